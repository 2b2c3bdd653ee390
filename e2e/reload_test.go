package e2e

import (
	"context"
	"io"
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

// TestStrictQueuesRemovedQueue: with strict_queues, a queue removed from the
// file refuses new jobs (404 unknown_queue) after SIGHUP and after a
// restart while its stored jobs still drain; a SIGHUP that changes
// strict_queues says in the log that the change needs a restart, and keys
// set by flags are not taken for changes.
func TestStrictQueuesRemovedQueue(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped in -short")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	conf := filepath.Join(dir, "edgeq.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	c := &http.Client{Timeout: 5 * time.Second}
	enqueue := func(d *daemon, q string) (int, string) {
		t.Helper()
		resp, err := c.Post(d.base+"/v1/queues/"+q+"/jobs", "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	lease := func(d *daemon, q string) int {
		t.Helper()
		var lr struct{ Jobs []apiJob }
		if code, err := call(ctx, c, "POST", d.base+"/v1/queues/"+q+"/lease?max=1", nil, &lr); err != nil || code != 200 {
			t.Fatalf("lease %s: %d %v", q, code, err)
		}
		return len(lr.Jobs)
	}
	waitLog := func(d *daemon, s string, n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); strings.Count(d.log.String(), s) < n; {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log 10s after SIGHUP:\n%s", s, d.log)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	refused := func(d *daemon, when string) {
		t.Helper()
		if code, body := enqueue(d, "removed"); code != 404 || !strings.Contains(body, "unknown_queue") {
			t.Errorf("%s: enqueue to the removed queue answered %d %s, want 404 unknown_queue", when, code, body)
		}
	}

	write("strict_queues: true\nqueues:\n  kept: {}\n  removed: {}\n")
	d := startDaemon(t, data, "--config", conf)
	for range 3 {
		if code, body := enqueue(d, "removed"); code != 201 {
			t.Fatalf("enqueue to a configured queue: %d %s", code, body)
		}
	}
	write("strict_queues: true\nqueues:\n  kept: {}\n")
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(d, "configuration reloaded", 1)
	refused(d, "after SIGHUP")
	if n := lease(d, "removed"); n != 1 {
		t.Errorf("lease from the removed queue after SIGHUP: %d jobs, want its backlog to drain", n)
	}
	if err := d.term(); err != nil {
		t.Fatal(err)
	}

	d = startDaemon(t, data, "--config", conf)
	refused(d, "after a restart")
	if n := lease(d, "removed"); n != 1 {
		t.Errorf("lease from the removed queue after a restart: %d jobs, want its backlog to drain", n)
	}
	if code, body := enqueue(d, "kept"); code != 201 {
		t.Errorf("enqueue to a configured queue: %d %s", code, body)
	}

	write("strict_queues: false\nqueues:\n  kept: {}\n")
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(d, "configuration reloaded", 1)
	waitLog(d, "key=strict_queues", 1)
	log := d.log.String()
	if !strings.Contains(log, "needs a restart") {
		t.Errorf("the log does not say that strict_queues needs a restart:\n%s", log)
	}
	for _, key := range []string{"key=data_dir", "key=http.addr"} {
		if strings.Contains(log, key) {
			t.Errorf("the log reports %s, which a flag sets and the reload left alone:\n%s", key, log)
		}
	}
	refused(d, "after a SIGHUP that turned strict_queues off without a restart")
}
