package crashfs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Mode says what a power cut does with data written since the last sync.
type Mode int

const (
	// Drop loses every unsynced write and truncate (the default).
	Drop Mode = iota
	// Tear cuts the power in the middle of the last unsynced write: the
	// file it went to keeps its earlier unsynced writes and the first half
	// of that one; other files lose unsynced data as with Drop.
	Tear
	// Reorder keeps, for each file on its own, a random prefix of its
	// unsynced writes: a later write to one file can survive an earlier
	// write to another that did not.
	Reorder
)

// Options configures a mount. The zero value drops unsynced data.
type Options struct {
	Mode Mode
	// Seed drives Reorder's choices, so a failing run can be replayed.
	Seed uint64
}

// FS is a mounted crash-simulating file system. Its methods are safe for
// concurrent use.
type FS struct {
	backing   string
	mountpath string
	graveyard string
	opts      Options
	server    *fuse.Server

	mu     sync.Mutex
	dead   bool                         // guarded by mu: after Cut or Close every operation fails with EIO
	files  map[uint64]*fileState        // guarded by mu: by backing inode, files with unsynced changes
	dirs   map[uint64]map[string]dirent // guarded by mu: by backing inode, entries at the directory's last sync
	last   *lastWrite                   // guarded by mu: the last unsynced write, for Tear
	closed bool                         // guarded by mu
	cut    CutStats                     // guarded by mu
}

// CutStats says what a power cut took away, so a test can tell a cut that
// lost something from one that found everything synced.
type CutStats struct {
	Writes  int // unsynced writes and truncates undone
	Entries int // directory entries removed or brought back
}

// LastCut is what the last Cut took away (zero before a cut).
func (c *FS) LastCut() CutStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cut
}

// fileState is the undo log of one file since its last sync, oldest first.
type fileState struct {
	undo []undoRecord
}

// undoRecord restores a file to what it was before one write or truncate:
// old holds the bytes that were at off (only those inside the file then),
// size its length.
type undoRecord struct {
	off  int64
	old  []byte
	size int64
}

type lastWrite struct {
	ino  uint64
	rec  int // index of the write's undo record
	off  int64
	data []byte
}

type dirent struct {
	ino uint64
	dir bool
}

// Mount mounts a crash-simulating view of backing on mountpoint. Both must
// be existing directories on the same file system as backing's parent,
// which also holds the FS's graveyard of unlinked files while they may come
// back. Everything already in backing counts as synced.
func Mount(backing, mountpoint string, opts Options) (*FS, error) {
	backing, err := filepath.Abs(backing)
	if err != nil {
		return nil, fmt.Errorf("crashfs: backing %s: %w", backing, err)
	}
	graveyard, err := os.MkdirTemp(filepath.Dir(backing), "."+filepath.Base(backing)+".crashfs-")
	if err != nil {
		return nil, fmt.Errorf("crashfs: graveyard: %w", err)
	}
	c := &FS{
		backing:   backing,
		mountpath: mountpoint,
		graveyard: graveyard,
		opts:      opts,
		files:     map[uint64]*fileState{},
		dirs:      map[uint64]map[string]dirent{},
	}
	root, err := fs.NewLoopbackRoot(backing)
	if err != nil {
		os.RemoveAll(graveyard)
		return nil, fmt.Errorf("crashfs: backing %s: %w", backing, err)
	}
	lr := root.(*fs.LoopbackNode).RootData
	lr.NewNode = func(r *fs.LoopbackRoot, _ *fs.Inode, _ string, _ *syscall.Stat_t) fs.InodeEmbedder {
		return &node{LoopbackNode: fs.LoopbackNode{RootData: r}, c: c}
	}
	rootNode := &node{LoopbackNode: fs.LoopbackNode{RootData: lr}, c: c}
	lr.RootNode = rootNode
	server, err := fs.Mount(mountpoint, rootNode, &fs.Options{
		MountOptions: fuse.MountOptions{
			FsName:            "crashfs",
			Name:              "crashfs",
			DirectMountStrict: true,
			// No writeback cache: every write reaches the FS when the
			// process makes it (or, for a shared mapping, at writeback or
			// msync), not when the kernel decides.
		},
	})
	if err != nil {
		os.RemoveAll(graveyard)
		return nil, fmt.Errorf("crashfs: mount %s: %w", mountpoint, err)
	}
	c.server = server
	return c, nil
}

// MountT mounts backing on a fresh directory for the test and unmounts it in
// t.Cleanup (without a cut). It skips the test, saying why, where FUSE is
// unavailable.
func MountT(t testing.TB, backing string, opts Options) *FS {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("crashfs needs /dev/fuse: %v", err)
	}
	c, err := Mount(backing, t.TempDir(), opts)
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		t.Skipf("crashfs cannot mount here (needs root or CAP_SYS_ADMIN): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("crashfs close: %v", err)
		}
	})
	return c
}

// Dir is the mount point: the directory a process under test works in.
func (c *FS) Dir() string { return c.mountpath }

// Backing is the backing directory. After Cut it holds what survived.
func (c *FS) Backing() string { return c.backing }

// Cut simulates a power cut: every later operation on the mount fails, the
// mount goes away, and the backing directory is rolled back to what was
// synced (as Options.Mode says). Processes still working on the mount
// should be killed first, or unmounting fails with EBUSY. After Cut the
// backing directory can be mounted again or used directly.
func (c *FS) Cut() error {
	if stopped, err := c.stop(); err != nil || stopped {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.revertLocked()
	if rmErr := os.RemoveAll(c.graveyard); err == nil && rmErr != nil {
		err = fmt.Errorf("crashfs: remove graveyard: %w", rmErr)
	}
	return err
}

// Close unmounts cleanly, as a shutdown that syncs everything would: the
// backing directory keeps what was written. Close after Cut, or twice, does
// nothing.
func (c *FS) Close() error {
	if stopped, err := c.stop(); err != nil || stopped {
		return err
	}
	return os.RemoveAll(c.graveyard)
}

// stop fails every later operation and unmounts; the kernel's last
// writebacks while unmounting fail too, so they change nothing. It says
// whether the FS was stopped already.
func (c *FS) stop() (stopped bool, err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return true, nil
	}
	c.dead = true
	c.closed = true
	c.mu.Unlock()
	if err := c.server.Unmount(); err != nil {
		c.mu.Lock()
		c.closed = false // dead stays: the power is off either way
		c.mu.Unlock()
		return false, fmt.Errorf("crashfs: unmount %s: %w", c.mountpath, err)
	}
	c.server.Wait()
	return false, nil
}

func (c *FS) rand() *rand.Rand {
	return rand.New(rand.NewPCG(c.opts.Seed, c.opts.Seed^0x9e3779b97f4a7c15))
}
