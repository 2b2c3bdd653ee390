package storage

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

// reclaimJobs is TestReclaimAfterPurge's backlog: 50,000 jobs, or
// EDGEQ_RECLAIM_JOBS (docs/BENCHMARKS.md quotes a run with 1,000,000).
func reclaimJobs(t *testing.T) int {
	t.Helper()
	if s := os.Getenv("EDGEQ_RECLAIM_JOBS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("EDGEQ_RECLAIM_JOBS=%q: want a positive integer", s)
		}
		return v
	}
	return 50_000
}

// TestReclaimAfterPurge fills a backlog (payloads inline, under their own
// key and in the value log), deletes every job as a purge does, and checks
// that the tables and value log on disk shrink to a small part of what
// they were once the maintenance loop finds the garbage worth a reclaim,
// without waiting for new writes to push the deletions down.
func TestReclaimAfterPurge(t *testing.T) {
	n := reclaimJobs(t)
	dir := t.TempDir()
	s := openDir(t, dir, nil)
	writeBatched(t, s, n, func(tx store.Txn, id int) error { return tx.Create(backlogJob(id)) })
	full := dataBytes(dir)
	writeBatched(t, s, n, func(tx store.Txn, id int) error {
		j := backlogJob(id)
		return tx.Delete(&job.Job{ID: j.ID, Queue: j.Queue, State: j.State, ReadySeq: j.ReadySeq, Size: len(j.Payload)})
	})
	purged := dataBytes(dir)
	// The maintenance loop may already be reclaiming (reclaimMu orders the
	// two); this one finds what is left.
	start := time.Now()
	if err := s.reclaim(); err != nil {
		t.Fatalf("reclaim: %v", err)
	}
	took := time.Since(start)
	after := dataBytes(dir)
	sst, vlogs := filesOf(t, dir, ".sst"), filesOf(t, dir, ".vlog")
	t.Logf("%d jobs: %d bytes of tables and value log filled, %d after deleting them all, %d after a reclaim of %s (%d tables of %d bytes, %d value-log files)",
		n, full, purged, after, took.Round(time.Millisecond), len(sst), sumSizes(t, sst), len(vlogs))
	// What stays: the value-log file Badger writes to (never collected,
	// allocated at twice ValueLogFileSize) and a table of the sequence key.
	if got := sumSizes(t, sst); got > 1<<20 {
		t.Errorf("after reclaim %d bytes of tables, want at most 1 MiB", got)
	}
	if len(vlogs) != 1 {
		t.Errorf("after reclaim %d value-log files, want only the one Badger writes to", len(vlogs))
	}
	if s.reclaimDue() {
		t.Errorf("reclaim still due after a reclaim: %d bytes counted deleted", s.garbage.Load())
	}
}

func filesOf(t *testing.T, dir, ext string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+ext))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sumSizes(t *testing.T, paths []string) int64 {
	t.Helper()
	var n int64
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}
