//go:build linux

package z

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMmapFileAllocatesEdgeq checks that a new mapped file and a grown one
// have their blocks allocated, not a hole: a write through the mapping into
// a hole faults (SIGBUS) when the file system is full.
func TestMmapFileAllocatesEdgeq(t *testing.T) {
	dir := t.TempDir()
	probe, err := os.Create(filepath.Join(dir, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	err = unix.Fallocate(int(probe.Fd()), 0, 0, 4096)
	probe.Close()
	if errors.Is(err, unix.EOPNOTSUPP) {
		t.Skipf("the file system of %s has no fallocate", dir)
	}

	const size = 1 << 20
	mf, err := OpenMmapFile(filepath.Join(dir, "log"), os.O_CREATE|os.O_RDWR, size)
	if err != NewFile {
		t.Fatalf("OpenMmapFile: %v, want NewFile", err)
	}
	defer mf.Close(-1)
	if got := allocated(t, mf.Fd); got < size {
		t.Fatalf("new file: %d bytes allocated, want %d", got, size)
	}
	if err := mf.Truncate(4 * size); err != nil {
		t.Fatal(err)
	}
	if got := allocated(t, mf.Fd); got < 4*size {
		t.Fatalf("grown file: %d bytes allocated, want %d", got, 4*size)
	}
	mf.Data[4*size-1] = 1
	if err := mf.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if fi, _ := mf.Fd.Stat(); fi.Size() != size {
		t.Fatalf("shrunk file: size %d, want %d", fi.Size(), size)
	}
}

func allocated(t *testing.T, f *os.File) int64 {
	t.Helper()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Blocks * 512
}

// TestMmapFileNoSpaceEdgeq fills a small tmpfs: creating a mapped file then
// fails with ENOSPC and leaves no file behind, and succeeds once NoSpace
// frees room.
func TestMmapFileNoSpaceEdgeq(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=4m"); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	ballast := filepath.Join(dir, "ballast")
	f, err := os.Create(ballast)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Fallocate(int(f.Fd()), 0, 0, 3<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()

	path := filepath.Join(dir, "log")
	if _, err := OpenMmapFile(path, os.O_CREATE|os.O_RDWR|os.O_EXCL, 2<<20); !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("OpenMmapFile on a full tmpfs: %v, want ENOSPC", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed create left %s behind: %v", path, err)
	}

	var asked []string
	NoSpace = func(p string) bool {
		asked = append(asked, p)
		return os.Remove(ballast) == nil
	}
	defer func() { NoSpace = nil }()
	mf, err := OpenMmapFile(path, os.O_CREATE|os.O_RDWR|os.O_EXCL, 2<<20)
	if err != NewFile {
		t.Fatalf("OpenMmapFile after NoSpace freed room: %v", err)
	}
	defer mf.Close(-1)
	if len(asked) != 1 || asked[0] != path {
		t.Fatalf("NoSpace called with %q, want [%s]", asked, path)
	}
	mf.Data[len(mf.Data)-1] = 1
}
