package crashfs_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/edgeq/edgeq/internal/crashfs"
	"golang.org/x/sys/unix"
)

func mount(t *testing.T, opts crashfs.Options) (*crashfs.FS, string) {
	t.Helper()
	backing := filepath.Join(t.TempDir(), "backing")
	if err := os.Mkdir(backing, 0o755); err != nil {
		t.Fatal(err)
	}
	return crashfs.MountT(t, backing, opts), backing
}

func syncDir(t *testing.T, dir string) {
	t.Helper()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatalf("fsync %s: %v", dir, err)
	}
}

func writeFile(t *testing.T, p string, data []byte, sync bool) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatalf("fsync %s: %v", p, err)
		}
	}
}

func readBacking(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cut(t *testing.T, c *crashfs.FS) {
	t.Helper()
	if err := c.Cut(); err != nil {
		t.Fatalf("cut: %v", err)
	}
}

// TestMmapMsync proves that a shared writable mapping's dirty pages reach the
// FS as writes and msync as a sync: Badger's memtable WAL is written so. The
// mapping is made in a child process, as the daemon's would be: a page fault
// on this process's own mount can wait on a FUSE server goroutine that a
// stop-the-world pause has stopped.
func TestMmapMsync(t *testing.T) {
	if name := os.Getenv("CRASHFS_MMAP_FILE"); name != "" {
		mmapWrite(t, name, os.Getenv("CRASHFS_MMAP_SYNC") == "1")
		return
	}
	c, backing := mount(t, crashfs.Options{})
	for _, name := range []string{"synced.mem", "unsynced.mem"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMmapMsync$", "-test.count=1")
		cmd.Env = append(os.Environ(), "CRASHFS_MMAP_FILE="+filepath.Join(c.Dir(), name))
		if name == "synced.mem" {
			cmd.Env = append(cmd.Env, "CRASHFS_MMAP_SYNC=1")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mmap child for %s: %v\n%s", name, err, out)
		}
		// Unmapping and closing wrote the dirty page back: it reached the
		// FS as a write, synced or not.
		if got := readBacking(t, filepath.Join(backing, name)); len(got) != mmapSize || !bytes.HasPrefix(got[4096:], []byte(mmapText)) {
			t.Fatalf("after the child the backing %s has %d bytes, want %d with the mapped write at 4096", name, len(got), mmapSize)
		}
	}
	syncDir(t, c.Dir())
	cut(t, c)
	got := readBacking(t, filepath.Join(backing, "synced.mem"))
	if len(got) != mmapSize || !bytes.HasPrefix(got[4096:], []byte(mmapText)) {
		t.Errorf("synced.mem after the cut: len %d, %q at 4096; want %d bytes with the msynced write", len(got), got[4096:4101], mmapSize)
	}
	got = readBacking(t, filepath.Join(backing, "unsynced.mem"))
	if len(got) != mmapSize || !bytes.Equal(got, make([]byte, mmapSize)) {
		t.Errorf("unsynced.mem after the cut: len %d, want %d zero bytes (the mapped write was never msynced)", len(got), mmapSize)
	}
}

const (
	mmapSize = 3 * 4096
	mmapText = "hello through the page cache"
)

// mmapWrite runs in the child: size the file and sync it, write through a
// shared mapping, msync if asked.
func mmapWrite(t *testing.T, name string, sync bool) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(mmapSize); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, mmapSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap %s: %v", name, err)
	}
	copy(m[4096:], mmapText)
	if sync {
		if err := unix.Msync(m, unix.MS_SYNC); err != nil {
			t.Fatalf("msync: %v", err)
		}
	}
	if err := unix.Munmap(m); err != nil {
		t.Fatal(err)
	}
}

func TestSyncSemantics(t *testing.T) {
	c, backing := mount(t, crashfs.Options{})
	// Before the mount: counts as synced.
	if err := os.WriteFile(filepath.Join(backing, "old"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(backing, "moved"), []byte("moved"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(backing, "removed"), []byte("removed"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := c.Dir()
	writeFile(t, filepath.Join(d, "durable"), []byte("synced"), true)
	writeFile(t, filepath.Join(d, "nodata"), []byte("written"), false)
	syncDir(t, d) // both names are durable; nodata's bytes are not
	writeFile(t, filepath.Join(d, "durable"), []byte("-more"), false)
	writeFile(t, filepath.Join(d, "nodirsync"), []byte("synced data, unsynced name"), true)
	if err := os.Rename(filepath.Join(d, "moved"), filepath.Join(d, "moved.new")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(d, "removed")); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(d, "old"), 1); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(d, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(d, "sub", "f"), []byte("in an unsynced directory"), true)
	syncDir(t, filepath.Join(d, "sub"))
	cut(t, c)
	// Undone: the append to durable, nodata's write, nodirsync's write (its
	// inode is gone), the truncate of old; names: moved.new, nodirsync and
	// sub removed, moved and removed back.
	if got, want := c.LastCut(), (crashfs.CutStats{Writes: 3, Entries: 5}); got != want {
		t.Errorf("LastCut() = %+v, want %+v", got, want)
	}

	ents, err := os.ReadDir(backing)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	want := []string{"durable", "moved", "nodata", "old", "removed"}
	if !slices.Equal(names, want) {
		t.Errorf("entries after the cut = %v, want %v (created-not-dir-synced gone, rename and unlink undone)", names, want)
	}
	for name, data := range map[string]string{
		"durable": "synced", // written+fsynced survives, later unsynced append does not
		"nodata":  "",       // name synced, data never
		"old":     "old",    // unsynced truncate undone
		"moved":   "moved",
		"removed": "removed",
	} {
		if got := string(readBacking(t, filepath.Join(backing, name))); got != data {
			t.Errorf("%s after the cut = %q, want %q", name, got, data)
		}
	}
}

func TestRenameWithDirSyncSurvives(t *testing.T) {
	c, backing := mount(t, crashfs.Options{})
	d := c.Dir()
	writeFile(t, filepath.Join(d, "MANIFEST"), []byte("v1"), true)
	syncDir(t, d)
	writeFile(t, filepath.Join(d, "MANIFEST-REWRITE"), []byte("v2"), true)
	if err := os.Rename(filepath.Join(d, "MANIFEST-REWRITE"), filepath.Join(d, "MANIFEST")); err != nil {
		t.Fatal(err)
	}
	syncDir(t, d)
	writeFile(t, filepath.Join(d, "MANIFEST-REWRITE"), []byte("v3"), true)
	if err := os.Rename(filepath.Join(d, "MANIFEST-REWRITE"), filepath.Join(d, "MANIFEST")); err != nil {
		t.Fatal(err)
	}
	cut(t, c)
	if got := string(readBacking(t, filepath.Join(backing, "MANIFEST"))); got != "v2" {
		t.Errorf("MANIFEST after the cut = %q, want v2 (the synced rename stays, the unsynced one is undone)", got)
	}
	if _, err := os.Stat(filepath.Join(backing, "MANIFEST-REWRITE")); !os.IsNotExist(err) {
		t.Errorf("MANIFEST-REWRITE after the cut: %v, want it gone (its name was never synced)", err)
	}
}

func TestCloseKeepsEverything(t *testing.T) {
	backing := filepath.Join(t.TempDir(), "backing")
	if err := os.Mkdir(backing, 0o755); err != nil {
		t.Fatal(err)
	}
	c := crashfs.MountT(t, backing, crashfs.Options{})
	writeFile(t, filepath.Join(c.Dir(), "f"), []byte("unsynced"), false)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := string(readBacking(t, filepath.Join(backing, "f"))); got != "unsynced" {
		t.Errorf("after a clean unmount f = %q, want %q", got, "unsynced")
	}
	if err := c.Cut(); err != nil {
		t.Errorf("cut after close: %v", err)
	}
}

func TestOperationsFailAfterCut(t *testing.T) {
	c, _ := mount(t, crashfs.Options{})
	f, err := os.Create(filepath.Join(c.Dir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// An open file keeps the mount busy: the cut still stops every write.
	if err := c.Cut(); err == nil {
		t.Fatal("cut with a file open on the mount succeeded, want EBUSY from unmount")
	}
	if _, err := f.Write([]byte("x")); err == nil {
		t.Error("write after the cut succeeded, want an error")
	}
	f.Close()
	cut(t, c)
}

func TestTear(t *testing.T) {
	c, backing := mount(t, crashfs.Options{Mode: crashfs.Tear})
	d := c.Dir()
	writeFile(t, filepath.Join(d, "other"), []byte("synced"), true)
	writeFile(t, filepath.Join(d, "wal"), []byte("base;"), true)
	syncDir(t, d)
	f, err := os.OpenFile(filepath.Join(d, "wal"), os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(d, "other"), []byte("+unsynced"), false)
	for _, rec := range []string{"first;", "12345678"} {
		if _, err := f.WriteString(rec); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	cut(t, c)
	if got, want := string(readBacking(t, filepath.Join(backing, "wal"))), "base;first;1234"; got != want {
		t.Errorf("wal after a torn cut = %q, want %q (earlier unsynced writes, then half of the last)", got, want)
	}
	if got := string(readBacking(t, filepath.Join(backing, "other"))); got != "synced" {
		t.Errorf("other after a torn cut = %q, want %q", got, "synced")
	}
}

// TestReorder cuts many times with different seeds: some cut must keep a
// later write to one file while dropping an earlier write to another, and
// every file must keep a prefix of its own writes.
func TestReorder(t *testing.T) {
	var reordered bool
	for seed := range uint64(16) {
		c, backing := mount(t, crashfs.Options{Mode: crashfs.Reorder, Seed: seed})
		d := c.Dir()
		for _, name := range []string{"a", "b"} {
			writeFile(t, filepath.Join(d, name), nil, true)
		}
		syncDir(t, d)
		fa, err := os.OpenFile(filepath.Join(d, "a"), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		fb, err := os.OpenFile(filepath.Join(d, "b"), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		// Order of writes: a1 b1 a2 b2.
		for _, w := range []struct {
			f *os.File
			s string
		}{{fa, "1"}, {fb, "1"}, {fa, "2"}, {fb, "2"}} {
			if _, err := w.f.WriteString(w.s); err != nil {
				t.Fatal(err)
			}
		}
		fa.Close()
		fb.Close()
		cut(t, c)
		a := string(readBacking(t, filepath.Join(backing, "a")))
		b := string(readBacking(t, filepath.Join(backing, "b")))
		for name, got := range map[string]string{"a": a, "b": b} {
			if !strings.HasPrefix("12", got) {
				t.Fatalf("seed %d: %s = %q, want a prefix of its writes %q", seed, name, got, "12")
			}
		}
		// b1 came after a1 (and b2 after a2): keeping it while losing
		// the earlier write to a is a reorder.
		if (len(b) >= 1 && len(a) == 0) || (len(b) == 2 && len(a) < 2) {
			reordered = true
		}
	}
	if !reordered {
		t.Error("no seed of 16 kept a later write to b while losing an earlier write to a")
	}
}

func TestDropIsDefault(t *testing.T) {
	c, backing := mount(t, crashfs.Options{})
	writeFile(t, filepath.Join(c.Dir(), "f"), []byte("synced"), true)
	syncDir(t, c.Dir())
	for range 3 {
		writeFile(t, filepath.Join(c.Dir(), "f"), []byte("XX"), false)
	}
	cut(t, c)
	if got := string(readBacking(t, filepath.Join(backing, "f"))); got != "synced" {
		t.Errorf("f after a cut = %q, want %q", got, "synced")
	}
}
