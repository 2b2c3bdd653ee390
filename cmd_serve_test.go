package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	contract "github.com/edgeq/edgeq/engine/store"
	"github.com/edgeq/edgeq/storage"
)

// logWatch is a daemon's stderr: it keeps the JSON log and hands over the
// address of the "listening" line.
type logWatch struct {
	addr chan string

	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func newLogWatch() *logWatch { return &logWatch{addr: make(chan string, 1)} }

// Write takes one slog record per call, as slog's handlers write them.
func (w *logWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf.Write(p)
	w.mu.Unlock()
	var rec struct{ Msg, Addr string }
	if json.Unmarshal(p, &rec) == nil && rec.Msg == "listening" {
		select {
		case w.addr <- rec.Addr:
		default:
		}
	}
	return len(p), nil
}

func (w *logWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// startServe runs `edgeq serve` in-process on dir until the returned stop
// is called; stop returns serve's exit code.
func startServe(t *testing.T, dir string) (addr string, log *logWatch, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	log = newLogWatch()
	done := make(chan int, 1)
	go func() {
		e := env{stdin: strings.NewReader(""), stdout: log, stderr: log, lookupEnv: mapEnv(nil)}
		args := []string{"edgeq", "serve", "--data-dir", dir, "--http-addr", "127.0.0.1:0", "--log-format", "json"}
		done <- exitCode(run(ctx, args, e), log)
	}()
	select {
	case addr = <-log.addr:
	case code := <-done:
		cancel()
		t.Fatalf("serve exited with %d before listening:\n%s", code, log)
	}
	return addr, log, func() int {
		cancel()
		return <-done
	}
}

// TestServe runs the daemon, enqueues through the CLI, stops the daemon
// with its context (as SIGTERM does) and finds the job in the store.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	addr, log, stop := startServe(t, dir)

	r := runCLI(t, env{}, "enqueue", "--addr", addr, "mail", "hello")
	if r.code != 0 || len(strings.TrimSpace(r.stdout)) != 16 {
		t.Errorf("enqueue: %+v", r)
	}
	if code := stop(); code != 0 {
		t.Fatalf("serve exited with %d, want 0:\n%s", code, log)
	}
	for _, msg := range []string{`"msg":"shutting down"`, `"msg":"stopped"`} {
		if !strings.Contains(log.String(), msg) {
			t.Errorf("log lacks %s:\n%s", msg, log)
		}
	}

	store, err := storage.Open(storage.Config{Dir: dir})
	if err != nil {
		t.Fatalf("reopen store: %v", err)
	}
	defer store.Close()
	var counts map[string]contract.Counts
	if err := store.View(func(tx contract.ReadTx) (err error) {
		counts, err = tx.Counts(nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if counts["mail"].Ready != 1 {
		t.Errorf("counts after restart %+v, want one ready job in mail", counts)
	}
}

// TestServeLockedDataDir checks that a second daemon on a data dir in use
// says so and exits 1.
func TestServeLockedDataDir(t *testing.T) {
	dir := t.TempDir()
	store, err := storage.Open(storage.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	r := runCLI(t, env{}, "serve", "--data-dir", dir, "--http-addr", "127.0.0.1:0")
	if r.code != exitFailure || !strings.Contains(r.stderr, "locked") || !strings.Contains(r.stderr, dir) {
		t.Errorf("serve on a locked dir: %+v, want exit 1 naming the dir and the lock", r)
	}
}

func TestServePortInUse(t *testing.T) {
	addr, _, stop := startServe(t, t.TempDir())
	defer stop()
	r := runCLI(t, env{}, "serve", "--data-dir", t.TempDir(), "--http-addr", addr)
	if r.code != exitFailure || !strings.Contains(r.stderr, addr) {
		t.Errorf("serve on a bound port: %+v, want exit 1 naming the address", r)
	}
}
