package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeq/edgeq/transport/httpapi"
)

// startNativeDaemon starts serve with the native protocol on a unix socket
// and answers the HTTP address and the socket's native address.
func startNativeDaemon(t *testing.T) (addr, nativeAddr string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "eqn") // a socket path must stay short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "edgeq.sock")
	cfg := filepath.Join(dir, "edgeq.yaml")
	if err := os.WriteFile(cfg, []byte("native:\n  socket: "+sock+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return startDaemon(t, "--config", cfg), "unix://" + sock
}

// TestWorkAndBenchNative: `edgeq bench --native` enqueues and consumes over
// the unix socket, and `edgeq work --native` runs a job's command and acks
// it over it.
func TestWorkAndBenchNative(t *testing.T) {
	t.Parallel()
	addr, nat := startNativeDaemon(t)
	cl := httpapi.NewClient("http://"+addr, "", nil)
	defer cl.CloseIdleConnections()

	r := callCLI(t, addr, "bench", "--native", nat, "--producers", "16", "--count", "300", "--queue", "n1", "--keep", "--json")
	var res benchResult
	decodeJSON(t, r.stdout, &res)
	if r.code != 0 || res.Enqueued != 300 || len(res.Errors) != 0 || !res.Config.Native {
		t.Fatalf("bench --native: enqueued %d, errors %v, %+v", res.Enqueued, res.Errors, r)
	}
	q, err := cl.Queue(t.Context(), "n1")
	if err != nil || q.Ready != 300 {
		t.Fatalf("after bench --native: %+v, %v; want 300 ready", q, err)
	}
	r = callCLI(t, addr, "bench", "--native", nat, "--producers", "0", "--consumers", "4", "--count", "300", "--lease-max", "1", "--queue", "n1", "--json")
	decodeJSON(t, r.stdout, &res)
	if r.code != 0 || res.Consumed != 300 || len(res.Errors) != 0 {
		t.Fatalf("bench --native consumers: consumed %d, errors %v, %+v", res.Consumed, res.Errors, r)
	}
	if q, err := cl.Queue(t.Context(), "n1"); err != nil || q.CompletedTotal != 300 || q.Ready+q.Leased != 0 {
		t.Fatalf("after consuming: %+v, %v", q, err)
	}

	out := filepath.Join(t.TempDir(), "out")
	res1, err := cl.Enqueue(t.Context(), "w1", []byte("hello"), httpapi.EnqueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stop := startWork(t, addr, "--native", nat, "w1", "--", "sh", "-c", "cat > "+out)
	eventually(t, 10*time.Second, "job done over the native protocol", func() bool {
		q, err := cl.Queue(t.Context(), "w1")
		return err == nil && q.CompletedTotal == 1
	})
	if wr := stop(); wr.code != 0 {
		t.Errorf("work exited %d: %s", wr.code, wr.stderr)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "hello" {
		t.Errorf("the command got %q, %v; want the payload of %s", b, err, res1.ID)
	}

	if r := callCLI(t, addr, "bench", "--native", "http://x", "--count", "1"); r.code != 2 || !strings.Contains(r.stderr, "--native") {
		t.Errorf("bench --native http://x: exit %d, %q; want 2 naming --native", r.code, r.stderr)
	}
}
