package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

// backlogDefault is TestBacklogReopen's backlog without -short. Under the
// race detector (amd64 only: the 32-bit proof runs without it) it is 60,000
// (backlog_race_test.go), which still compacts below level 0.
var backlogDefault = 200_000

// backlogJobs is the size of TestBacklogReopen's backlog. EDGEQ_BACKLOG_JOBS
// overrides it (make test-arm keeps it small enough for qemu).
func backlogJobs(t *testing.T) int {
	t.Helper()
	n := backlogDefault
	if testing.Short() {
		n = min(n, 100_000)
	}
	if s := os.Getenv("EDGEQ_BACKLOG_JOBS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("EDGEQ_BACKLOG_JOBS=%q: want a positive integer", s)
		}
		n = v
	}
	return n
}

// backlogQueues spreads the backlog over a few queues, so index keys
// interleave in the tables.
var backlogQueues = []string{"telemetry", "alarms", "uplink.batch"}

// backlogPayload is job id's payload: mostly 256 bytes (inline in the
// record); every 7th just below ValueThreshold (1 KiB: its own payload key,
// which stays in the LSM tree and grows its block); every 13th above it
// (the value log). The bytes depend on the id, so a
// payload read back from another job's slot does not match.
func backlogPayload(id int) []byte {
	size := 256
	switch {
	case id%13 == 0:
		size = 1024 + id%1024
	case id%7 == 0:
		size = 1000 + id%23
	}
	p := make([]byte, size)
	for i := range p {
		p[i] = byte(id*31 + i*7 + id>>8)
	}
	return p
}

func backlogJob(id int) *job.Job {
	return &job.Job{ID: job.ID(id), Queue: backlogQueues[id%len(backlogQueues)], State: job.StateReady,
		ReadySeq: uint64(id), MaxAttempts: 5, TTR: 60e9, ContentType: "application/octet-stream",
		Payload: backlogPayload(id)}
}

// backlogAcked reports whether the test deletes job id after the fill, so
// that compactions also drop tombstoned keys.
func backlogAcked(id int) bool { return id%3 == 0 }

// writeBatched runs op for ids 1..n in Fits-sized transactions, committing
// and syncing (the engine's group commit) whenever the next job might not
// fit, and stores the sequence n at the end.
func writeBatched(t *testing.T, s *Badger, n int, op func(tx store.Txn, id int) error) {
	t.Helper()
	tx := s.Begin()
	commit := func(seq int) {
		t.Helper()
		if err := tx.SetSeq(uint64(seq)); err != nil {
			t.Fatalf("SetSeq(%d): %v", seq, err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatalf("Commit at %d: %v", seq, err)
		}
		if err := s.Sync(); err != nil {
			t.Fatalf("Sync at %d: %v", seq, err)
		}
	}
	for id := 1; id <= n; id++ {
		if !fitsJob(tx, backlogPayload(id)) {
			commit(id - 1)
			tx = s.Begin()
		}
		if err := op(tx, id); err != nil {
			tx.Discard()
			t.Fatalf("job %d: %v", id, err)
		}
	}
	commit(n)
}

// checkBacklog reads every job back: the acked ones must be gone, the others
// whole (record and payload), and each queue's ready index must list exactly
// the live jobs in order.
func checkBacklog(t *testing.T, s *Badger, n int) {
	t.Helper()
	var missing, wrong, resurrected int
	var firstErr error
	err := s.View(func(r store.ReadTx) error {
		for id := 1; id <= n; id++ {
			j, err := r.Job(job.ID(id), true)
			switch {
			case backlogAcked(id):
				if !errors.Is(err, job.ErrNotFound) {
					resurrected++
				}
				continue
			case errors.Is(err, job.ErrNotFound):
				missing++
				continue
			case err != nil:
				wrong++
				if firstErr == nil {
					firstErr = fmt.Errorf("job %d: %w", id, err)
				}
				continue
			}
			want := backlogJob(id)
			if j.Queue != want.Queue || j.ReadySeq != want.ReadySeq || !bytes.Equal(j.Payload, want.Payload) {
				wrong++
				if firstErr == nil {
					firstErr = fmt.Errorf("job %d: read queue %q seq %d payload %d bytes, want %q %d %d bytes",
						id, j.Queue, j.ReadySeq, len(j.Payload), want.Queue, want.ReadySeq, len(want.Payload))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	if missing+wrong+resurrected > 0 {
		t.Fatalf("of %d jobs: %d missing, %d wrong, %d acked but present; first: %v",
			n, missing, wrong, resurrected, firstErr)
	}

	// The ready index, read in pages as the engine does.
	for qi, q := range backlogQueues {
		var got int
		next := qi // ids of queue q are qi, qi+3, qi+6, ... (skipping acked ones)
		after := uint64(0)
		for {
			var refs []store.Ref
			if err := s.View(func(r store.ReadTx) (err error) {
				refs, err = r.Ready(q, after, 1000)
				return err
			}); err != nil {
				t.Fatalf("Ready(%s, %d): %v", q, after, err)
			}
			if len(refs) == 0 {
				break
			}
			for _, ref := range refs {
				for next == 0 || backlogAcked(next) {
					next += len(backlogQueues)
				}
				if ref.ID != job.ID(next) {
					t.Fatalf("Ready(%s): got job %d after %d listed, want %d", q, ref.ID, got, next)
				}
				next += len(backlogQueues)
				got++
			}
			after = refs[len(refs)-1].Seq
		}
		var want int
		for id := 1; id <= n; id++ {
			if id%len(backlogQueues) == qi && !backlogAcked(id) {
				want++
			}
		}
		if got != want {
			t.Fatalf("Ready(%s) listed %d jobs, want %d", q, got, want)
		}
	}
}

// TestBacklogReopen writes a backlog many memtables deep through Create in
// Fits-sized transactions with a Sync each (the engine's group commit),
// acks a third of it, checks that compactions built tables below level 0,
// reads everything back, closes, reopens and reads everything back again.
//
// It is the proof of the 32-bit fix in third_party/ristretto (doc.go,
// "32-bit ARM"): on linux/arm without it, Badger's table builders overwrite
// their own data once a table outgrows its first allocator buffer. Run it
// there with
//
//	GOARCH=arm GOARM=7 go test -exec qemu-arm -run BacklogReopen -v ./storage/
func TestBacklogReopen(t *testing.T) {
	n := backlogJobs(t)
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = s.Close()
		}
	})

	writeBatched(t, s, n, func(tx store.Txn, id int) error { return tx.Create(backlogJob(id)) })
	writeBatched(t, s, n, func(tx store.Txn, id int) error {
		if !backlogAcked(id) {
			return nil
		}
		// What the engine's ack passes: no payload, its Size.
		j := backlogJob(id)
		return tx.Delete(&job.Job{ID: j.ID, Queue: j.Queue, State: j.State, ReadySeq: j.ReadySeq, Size: len(j.Payload)})
	})

	var deep, tables int
	for _, ti := range s.db.Tables() {
		tables++
		if ti.Level > 0 {
			deep++
		}
	}
	t.Logf("%d jobs: %d tables, %d below level 0", n, tables, deep)
	if deep == 0 {
		t.Fatalf("no table below level 0 after %d jobs: no compaction ran, the test proves less than it says", n)
	}
	checkBacklog(t, s, n)

	closed = true
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2 := openDir(t, dir, nil)
	if s2.Short() {
		t.Fatal("store came back short of its checkpoint")
	}
	checkBacklog(t, s2, n)
}
