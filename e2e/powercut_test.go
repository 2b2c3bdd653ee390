package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/edgeq/edgeq/internal/crashfs"
)

// TestPowerCutKeepsAcknowledgedJobs runs the real binary on crashfs, which
// forgets at a cut everything not synced (SIGKILL alone keeps the page
// cache): 16 producers enqueue over HTTP while a worker leases and acks, the
// daemon is killed, the power is cut, and the next round starts on what
// survived. Every job answered 201 must then be delivered, and no job whose
// ack was answered 200 may be delivered again. This is the first step of
// issue 18's torture test, not all of it: no MQTT, no forced compaction.
func TestPowerCutKeepsAcknowledgedJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary on a FUSE mount; skipped in -short")
	}
	backing := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(backing, 0o755); err != nil {
		t.Fatal(err)
	}
	const rounds, producers = 3, 16
	l := newLedger()
	var lostAtCuts crashfs.CutStats
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	for round := range rounds {
		fsys := crashfs.MountT(t, backing, crashfs.Options{})
		d := startDaemon(t, fsys.Dir())
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		l.run(ctx, &wg, client, d.base, "cut", round, producers)
		time.Sleep(time.Duration(700+300*round) * time.Millisecond) // let the stream run; the cut lands mid-stream
		d.kill()
		cancel()
		wg.Wait()
		if err := fsys.Cut(); err != nil {
			t.Fatalf("round %d: power cut: %v", round, err)
		}
		st := fsys.LastCut()
		lostAtCuts.Writes += st.Writes
		lostAtCuts.Entries += st.Entries
		accepted, acked := l.counts()
		t.Logf("round %d: %d accepted, %d acked so far; the cut undid %d writes and %d entries", round, accepted, acked, st.Writes, st.Entries)
	}
	if lostAtCuts.Writes == 0 {
		t.Fatalf("no cut in %d rounds found an unsynced write: the cuts tested nothing", rounds)
	}
	if accepted, _ := l.counts(); accepted < 100 {
		t.Fatalf("only %d jobs accepted in %d rounds: the test did not exercise anything", accepted, rounds)
	}

	// Restart on what survived the last cut and drain everything.
	d := startDaemon(t, backing)
	l.check(t, client, d, "cut", "a power cut")
	if err := d.term(); err != nil {
		t.Errorf("clean stop: %v", err)
	}
}
