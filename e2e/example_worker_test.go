package e2e

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExampleWorker builds examples/worker (package client's Worker) and
// runs it against the real binary: mails are sent, a payload that is not a
// mail goes dead, and SIGINT stops it cleanly.
func TestExampleWorker(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "worker")
	if out, err := exec.Command("go", "build", "-o", bin, "../examples/worker").CombinedOutput(); err != nil {
		t.Fatalf("go build examples/worker: %v\n%s", err, out)
	}
	d := startDaemon(t, t.TempDir())
	var ids []string
	for _, body := range []string{`{"to":"ops@example.com","subject":"pump 3 stopped"}`, `{"to":"eng@example.com","subject":"hi"}`, `"not a mail"`} {
		var res struct{ ID string }
		if code, err := call(t.Context(), http.DefaultClient, "POST", d.base+"/v1/queues/mail/jobs", []byte(body), &res); err != nil || code != 201 {
			t.Fatalf("enqueue: %d %v", code, err)
		}
		ids = append(ids, res.ID)
	}
	cmd := exec.Command(bin, "-queue", "mail", "-concurrency", "2")
	cmd.Env = append(cmd.Environ(), "EDGEQ_ADDR="+d.base)
	out := new(syncBuffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var dead apiJobState
		call(t.Context(), http.DefaultClient, "GET", d.base+"/v1/jobs/"+ids[2], nil, &dead)
		if strings.Count(out.String(), "mail to ") == 2 && dead.State == "dead" {
			if !strings.HasPrefix(dead.LastError, "not a mail") {
				t.Errorf("the dead job's last_error: %q", dead.LastError)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s the worker printed:\n%s", out)
		}
	}
	if !strings.Contains(out.String(), `mail to ops@example.com: "pump 3 stopped"`) {
		t.Errorf("worker output:\n%s", out)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Errorf("worker after SIGINT: %v\n%s", err, out)
	}
}

// apiJobState is the part of GET /v1/jobs/{id} this test reads.
type apiJobState struct {
	State     string `json:"state"`
	LastError string `json:"last_error"`
}
