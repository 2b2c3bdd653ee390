package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/ristretto/v2/z"
	"golang.org/x/sys/unix"

	"github.com/edgeq/edgeq/engine/job"
)

// ReserveFile is the name, in the data directory, of the file that holds
// space back for Badger's own files (see doc.go, "Full disk").
const ReserveFile = "edgeq.reserve"

// statRefreshBytes: admission reads the file system's free space again
// after this many bytes were admitted since the last reading.
const statRefreshBytes = 1 << 20

// space is the store's account of free space on its file system: the
// admission check (Reserve) and the reserve file. Safe for concurrent use.
type space struct {
	dir      string
	headroom int64 // free bytes that admission leaves to Badger's next files
	reserve  int64 // size of the reserve file
	flush    int64 // free bytes a memtable flush needs: a new WAL and the tables
	log      *slog.Logger
	statfs   func(dir string) (int64, error) // available bytes; tests replace it

	mu       sync.Mutex
	free     int64 // guarded by mu: available bytes at the last statfs
	pending  int64 // guarded by mu: bytes admitted and not yet committed
	since    int64 // guarded by mu: bytes admitted since the last statfs
	released bool  // guarded by mu: the reserve file was given up
}

// headroomFor is what a store of profile p keeps free for its own files: the
// next memtable WAL (twice the memtable, as Badger sizes it), the tables of
// the memtables waiting to be flushed, the next value-log file (twice its
// size) and one compaction's new tables (the base level plus level 0).
func headroomFor(p profile) int64 {
	return 2*p.memTableSize + int64(p.numMemtables)*p.memTableSize +
		2*p.valueLogFileSize + p.baseLevelSize + int64(p.numL0Tables)*p.memTableSize
}

// reserveFor is the reserve file of profile p: what Open needs (a new
// memtable WAL and value-log file, the replayed memtables' tables) and room
// for one memtable rotation after it, so that a store opened on a full disk
// can take the leases, acks and purges that drain it.
func reserveFor(p profile) int64 {
	return 4*p.memTableSize + int64(p.numMemtables)*p.memTableSize + 2*p.valueLogFileSize
}

func newSpace(dir string, p profile, log *slog.Logger) *space {
	return &space{dir: dir, headroom: headroomFor(p), reserve: reserveFor(p),
		flush: 2*p.memTableSize + int64(p.numMemtables)*p.memTableSize, log: log, statfs: statfsAvail}
}

func statfsAvail(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// admit accounts for n bytes about to be written, or refuses them with an
// error wrapping job.ErrDiskFull when they would eat into the headroom.
func (s *space) admit(n int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.since += n
	if s.since >= statRefreshBytes || s.free-s.pending-n < s.needLocked() {
		s.refreshLocked()
	}
	if avail, need := s.free-s.pending, s.needLocked(); avail-n < need {
		return fmt.Errorf("%w: %s available on %s, %s held back for the store's own files",
			job.ErrDiskFull, formatBytes(max(avail, 0)), s.dir, formatBytes(need))
	}
	s.pending += n
	return nil
}

// tight reports whether admission refuses for want of space (as of the
// last reading).
func (s *space) tight() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.free-s.pending < s.needLocked()
}

// canFlush reports whether a forced memtable flush will find room: the
// reserve file is still there to give up, or the free space holds a new WAL
// and the flushed tables. (Badger v4.9.6 is left without a memtable when it
// cannot create the new one, and its next write stops the process.)
func (s *space) canFlush() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.released || s.free >= s.flush
}

// committed takes n bytes a transaction wrote (or failed to) off pending.
func (s *space) committed(n int64) {
	s.mu.Lock()
	s.pending = max(s.pending-n, 0)
	s.mu.Unlock()
}

// needLocked is the free space admission keeps: the headroom, and while
// the reserve file is given up, room to make it again.
func (s *space) needLocked() int64 {
	if s.released {
		return s.headroom + s.reserve
	}
	return s.headroom
}

// refresh reads the free space again (the maintenance loop, once a second)
// and reports the available bytes.
func (s *space) refresh() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshLocked()
	return s.free
}

// refreshLocked reads the free space and makes the reserve file again once
// there is room for it and the headroom.
func (s *space) refreshLocked() {
	free, err := s.statfs(s.dir)
	if err != nil {
		s.log.Warn("read free space", "err", err)
		return
	}
	s.free, s.since = free, 0
	if !s.released || free < s.headroom+s.reserve {
		return
	}
	if err := s.makeReserve(); err != nil {
		s.log.Warn("make reserve file", "err", err)
		return
	}
	s.released = false
	s.log.Info("disk space back: reserve file made again", "path", s.path(), "bytes", s.reserve)
	if free, err = s.statfs(s.dir); err == nil {
		s.free = free
	}
}

func (s *space) path() string { return filepath.Join(s.dir, ReserveFile) }

// open makes sure the reserve file exists before Badger opens: it is made
// when missing and there is room for it, else the store runs without one
// (and refuses enqueues) until there is.
func (s *space) open() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fi, err := os.Stat(s.path()); err == nil && fi.Size() >= s.reserve {
		s.refreshLocked()
		return
	}
	if err := s.makeReserve(); err != nil {
		s.released = true
		s.log.Warn("no room for the reserve file: enqueues are refused until there is", "path", s.path(), "bytes", s.reserve, "err", err)
	}
	s.refreshLocked()
}

// makeReserve allocates the reserve file's blocks (a sparse file would
// hold nothing back).
func (s *space) makeReserve() error {
	f, err := os.OpenFile(s.path(), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = unix.Fallocate(int(f.Fd()), 0, 0, s.reserve)
	if errors.Is(err, unix.EOPNOTSUPP) {
		err = writeZeros(f, s.reserve)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(s.path())
		return fmt.Errorf("reserve %s: %w", s.path(), err)
	}
	return nil
}

func writeZeros(f *os.File, n int64) error {
	buf := make([]byte, 1<<20)
	for n > 0 {
		w, err := f.Write(buf[:min(int64(len(buf)), n)])
		if err != nil {
			return err
		}
		n -= int64(w)
	}
	return nil
}

// release gives the reserve file up, when it is still there, so that the
// allocation Badger is making can succeed; it reports whether it freed
// anything.
func (s *space) release(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return false
	}
	err := os.Remove(s.path())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Error("disk full: give up the reserve file", "path", s.path(), "err", err)
		return false
	}
	s.released = true
	s.log.Warn("disk full: gave up the reserve file for the store's own files; enqueues are refused until space is freed",
		"reserve", s.path(), "for", filepath.Base(path), "bytes", s.reserve)
	return err == nil
}

// spaces maps a data directory to its open store's space, for z.NoSpace
// and table.NoSpace, which Badger's file allocations and table writes call
// with the file's path.
var spaces sync.Map // dir string → *space

func init() {
	noSpace := func(path string) bool {
		if s, ok := spaces.Load(filepath.Dir(path)); ok {
			return s.(*space).release(path)
		}
		return false
	}
	z.NoSpace = noSpace
	table.NoSpace = noSpace
}

// formatBytes prints n in MiB with one decimal, or in bytes below 1 MiB.
func formatBytes(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
