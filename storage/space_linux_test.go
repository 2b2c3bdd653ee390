package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory for the test,
// or skips the test when it cannot (it needs root).
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fillUp writes a file in dir until the file system refuses.
func fillUp(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for range 1 << 12 {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatalf("fill: %v", err)
			}
			return
		}
	}
	t.Fatal("fill: the file system never filled")
}

// TestFullDisk fills a small tmpfs through the store as the engine does
// (Reserve before each batch) until Reserve refuses, fills what is left with
// another file, and checks: nothing faulted, every committed job reads back,
// the store closes, opens again on the full disk (its reserve file makes
// room) and deletes its jobs.
func TestFullDisk(t *testing.T) {
	p := profiles[ProfileSmall]
	// The files an open store holds (a memtable WAL, a value-log file, the
	// discard stats), the reserve, the headroom and 24 MiB for jobs.
	open := 2*p.memTableSize + 2*p.valueLogFileSize + 1<<20
	dir := mountTmpfs(t, open+reserveFor(p)+headroomFor(p)+24<<20)
	log := testLogger(t)
	s, err := Open(Config{Dir: dir, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, ReserveFile)); err != nil || fi.Size() != reserveFor(p) {
		t.Fatalf("reserve file: %v, %v; want %d bytes", fi, err, reserveFor(p))
	}

	// Batches of about 64 jobs, as the engine would send them.
	n, refused := 0, error(nil)
	for refused == nil && n < 1_000_000 {
		bytes := 0
		for id := n + 1; id <= n+64; id++ {
			bytes += len(backlogPayload(id)) + 256
		}
		if refused = s.reserveBytes(bytes); refused != nil {
			break
		}
		tx := s.Begin()
		for id := n + 1; id <= n+64; id++ {
			if !fitsJob(tx, backlogPayload(id)) {
				t.Fatalf("job %d: no room in a 64-job transaction", id)
			}
			if err := tx.Create(backlogJob(id)); err != nil {
				t.Fatalf("create %d: %v", id, err)
			}
		}
		if err := tx.SetSeq(uint64(n + 64)); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatalf("commit at %d (Reserve admitted it): %v", n, err)
		}
		if err := s.Sync(); err != nil {
			t.Fatalf("sync at %d: %v", n, err)
		}
		n += 64
	}
	if !errors.Is(refused, job.ErrDiskFull) {
		t.Fatalf("after %d jobs: Reserve = %v, want job.ErrDiskFull", n, refused)
	}
	t.Logf("Reserve refused after %d jobs: %v", n, refused)
	if n < 5_000 {
		t.Fatalf("only %d jobs before the disk was full", n)
	}

	fillUp(t, dir)
	if err := s.Close(); err != nil {
		t.Logf("close on a full disk: %v", err)
	}

	s, err = Open(Config{Dir: dir, Logger: log})
	if err != nil {
		t.Fatalf("open on a full disk: %v", err)
	}
	defer s.Close()
	if err := s.Reserve([]job.New{{Queue: "q", Payload: []byte("x")}}); !errors.Is(err, job.ErrDiskFull) {
		t.Errorf("Reserve on a full disk = %v, want job.ErrDiskFull", err)
	}
	readAll(t, s, n)
	writeBatched(t, s, n, func(tx store.Txn, id int) error {
		j, err := tx.Job(job.ID(id), false)
		if err != nil {
			return err
		}
		return tx.Delete(j)
	})
}

// readAll reads jobs 1..n back with their payloads.
func readAll(t *testing.T, s *Badger, n int) {
	t.Helper()
	var bad []string
	err := s.View(func(r store.ReadTx) error {
		for id := 1; id <= n; id++ {
			j, err := r.Job(job.ID(id), true)
			switch {
			case err != nil:
				bad = append(bad, fmt.Sprintf("%d: %v", id, err))
			case string(j.Payload) != string(backlogPayload(id)):
				bad = append(bad, fmt.Sprintf("%d: payload differs", id))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	if len(bad) > 0 {
		t.Fatalf("%d of %d jobs read back wrong, first %q", len(bad), n, bad[:min(len(bad), 5)])
	}
}
