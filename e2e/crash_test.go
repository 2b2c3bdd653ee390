package e2e

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestCrashKeepsAcknowledgedJobs is SPEC 3's durability guarantee on the real
// binary: 16 producers enqueue over HTTP while a worker leases and acks; the
// process is killed with SIGKILL mid-stream and restarted on the same data
// directory, for several rounds. Every job answered 201 must then be
// delivered, and no job whose ack was answered 200 may be delivered again.
func TestCrashKeepsAcknowledgedJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary; skipped in -short")
	}
	dir := t.TempDir()
	const rounds, producers = 3, 16
	l := newLedger()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	for round := range rounds {
		d := startDaemon(t, dir)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		l.run(ctx, &wg, client, d.base, "crash", round, producers)
		time.Sleep(time.Duration(700+300*round) * time.Millisecond) // let the stream run; the kill lands mid-stream
		d.kill()
		cancel()
		wg.Wait()
		accepted, acked := l.counts()
		t.Logf("round %d: %d accepted, %d acked so far", round, accepted, acked)
	}
	if accepted, _ := l.counts(); accepted < 100 {
		t.Fatalf("only %d jobs accepted in %d rounds: the test did not exercise anything", accepted, rounds)
	}

	// Restart and drain everything.
	d := startDaemon(t, dir)
	l.check(t, client, d, "crash", "SIGKILL")
	if err := d.term(); err != nil {
		t.Errorf("clean stop: %v", err)
	}
}
