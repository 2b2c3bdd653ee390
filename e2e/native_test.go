package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/edgeq/edgeq/transport/httpapi"
	"github.com/edgeq/edgeq/transport/native"
)

// TestNativeCrashKeepsAnsweredJobs is the crash test of the native protocol
// on the real binary: producers enqueue over the unix socket (pipelined on
// one client) while a worker leases and acks over it; the process is
// killed with SIGKILL mid-stream and restarted, twice. Every enqueue the
// socket answered must then be delivered, and no job whose ack was answered
// delivered again.
func TestNativeCrashKeepsAnsweredJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary; skipped in -short")
	}
	dir := t.TempDir()
	sockDir, err := os.MkdirTemp("", "eqc") // a socket path must stay short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "edgeq.sock")
	cfg := filepath.Join(sockDir, "edgeq.yaml")
	if err := os.WriteFile(cfg, []byte("native:\n  socket: "+sock+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const rounds, producers = 2, 16
	l := newLedger()
	for round := range rounds {
		d := startDaemon(t, dir, "--config", cfg)
		cl, err := native.NewClient("unix://"+sock, native.ClientConfig{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		l.runNative(ctx, &wg, cl, "ncrash", round, producers)
		time.Sleep(time.Duration(500+300*round) * time.Millisecond) // the kill lands mid-stream
		d.kill()
		wg.Wait()
		cancel()
		cl.Close()
		accepted, acked := l.counts()
		t.Logf("round %d: %d accepted, %d acked so far", round, accepted, acked)
	}
	if accepted, _ := l.counts(); accepted < 100 {
		t.Fatalf("only %d jobs accepted in %d rounds: the test did not exercise anything", accepted, rounds)
	}
	d := startDaemon(t, dir, "--config", cfg)
	client := &http.Client{Timeout: 10 * time.Second}
	l.check(t, client, d, "ncrash", "SIGKILL")
	if err := d.term(); err != nil {
		t.Errorf("clean stop: %v", err)
	}
}

// runNative is run over the native protocol: producers enqueue until a
// call fails (the process died), a worker leases and acks.
func (l *ledger) runNative(ctx context.Context, wg *sync.WaitGroup, cl *native.Client, queue string, round, producers int) {
	for p := range producers {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				r, err := cl.Enqueue(ctx, queue, fmt.Appendf(nil, "r%d-p%d-%d", round, p, n), httpapi.EnqueueOptions{})
				if err != nil {
					var ae *httpapi.APIError
					if errors.As(err, &ae) && ae.Temporary() {
						continue
					}
					return // the process died under us: this one was never answered
				}
				l.mark(l.accepted, r.ID)
			}
		})
	}
	wg.Go(func() {
		for ctx.Err() == nil {
			jobs, err := cl.Lease(ctx, queue, 20, 0, time.Minute)
			if err != nil {
				return
			}
			for _, j := range jobs {
				l.mark(l.ackSent, j.ID)
				if err := cl.Ack(ctx, j.ID, j.Lease.ID); err != nil {
					return
				}
				l.mark(l.acked, j.ID)
			}
		}
	})
}
