package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGHUPReload: on the real binary, SIGHUP applies a changed rate and
// class; a broken file is refused and the running configuration stays.
func TestSIGHUPReload(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "edgeq.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("queues:\n  ingest: {class: low, rate: 1/s}\n")
	d := startDaemon(t, filepath.Join(dir, "data"), "--config", conf)
	ctx := context.Background()
	c := &http.Client{Timeout: 5 * time.Second}
	enq := func() int {
		code, err := call(ctx, c, "POST", d.base+"/v1/queues/ingest/jobs", []byte("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	class := func() string {
		var q struct {
			Class string `json:"class"`
		}
		if _, err := call(ctx, c, "GET", d.base+"/v1/queues/ingest", nil, &q); err != nil {
			t.Fatal(err)
		}
		return q.Class
	}
	if a, b := enq(), enq(); a != 201 || b != 429 {
		t.Fatalf("at 1/s: %d then %d, want 201 then 429", a, b)
	}
	write("queues:\n  ingest: {class: critical}\n")
	d.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for class() != "critical" {
		if time.Now().After(deadline) {
			t.Fatalf("class still %q 10s after SIGHUP:\n%s", class(), d.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := range 5 {
		if code := enq(); code != 201 {
			t.Fatalf("enqueue %d after the rate was removed: %d", i, code)
		}
	}
	write("queues:\n  ingest: {class: urgent}\n")
	d.cmd.Process.Signal(syscall.SIGHUP)
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(d.log.String(), "reload refused") {
		if time.Now().After(deadline) {
			t.Fatalf("no refusal logged 10s after a broken file:\n%s", d.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := class(); got != "critical" {
		t.Errorf("after a broken reload the class is %q, want critical kept", got)
	}
	if code := enq(); code != 201 {
		t.Errorf("enqueue after a broken reload: %d", code)
	}
}
