package storage

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/edgeq/edgeq/engine/job"
)

// TestSpaceAdmission: admission refuses what would eat into the headroom,
// counts what it admitted until it is committed, reads the free space again
// after a MiB admitted, and keeps room for the reserve file while it is
// given up.
func TestSpaceAdmission(t *testing.T) {
	free := int64(200 << 20)
	reads := 0
	s := &space{dir: t.TempDir(), headroom: 100 << 20, reserve: 50 << 20, flush: 10 << 20,
		log: slog.New(slog.DiscardHandler)}
	s.statfs = func(string) (int64, error) { reads++; return free, nil }
	s.refresh()

	if err := s.admit(60 << 20); err != nil {
		t.Fatalf("admit 60 MiB of 100 MiB above the headroom: %v", err)
	}
	if err := s.admit(60 << 20); !errors.Is(err, job.ErrDiskFull) {
		t.Fatalf("admit 60 MiB more before any commit = %v, want ErrDiskFull", err)
	}
	if s.tight() {
		t.Error("tight with 40 MiB of room left above the headroom")
	}
	s.committed(60 << 20)
	if err := s.admit(60 << 20); err != nil {
		t.Fatalf("admit 60 MiB after the first 60 were committed: %v", err)
	}
	s.committed(60 << 20)

	before := reads
	free = 90 << 20 // the files grew: below the headroom
	if err := s.admit(2 << 20); !errors.Is(err, job.ErrDiskFull) {
		t.Fatalf("admit 2 MiB with 90 MiB free and a 100 MiB headroom = %v, want ErrDiskFull", err)
	}
	if reads == before {
		t.Error("2 MiB admitted did not read the free space again")
	}
	if !s.tight() {
		t.Error("not tight with 90 MiB free and a 100 MiB headroom")
	}

	s.released = true
	free = 120 << 20
	s.mu.Lock()
	s.refreshLocked() // not enough to make the reserve again (150 MiB)
	s.mu.Unlock()
	if err := s.admit(1); !errors.Is(err, job.ErrDiskFull) {
		t.Errorf("admit with the reserve given up and 120 MiB free = %v, want ErrDiskFull (room kept for the reserve)", err)
	}
	if !s.canFlush() {
		t.Error("canFlush false with 120 MiB free")
	}
	free = 5 << 20
	s.refresh()
	if s.canFlush() {
		t.Error("canFlush true with the reserve gone and 5 MiB free")
	}
	free = 200 << 20
	s.refresh()
	if s.released {
		t.Error("the reserve file was not made again with 200 MiB free")
	}
}
