package badger

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4/options"
	"golang.org/x/sys/unix"
)

// tableRSS sums the resident kB of this process's mappings of dir's tables
// (/proc/self/smaps) and the kB of the table files.
func tableRSS(t *testing.T, dir string) (rss, size int) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skip("no /proc/self/smaps:", err)
	}
	in := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 6 && strings.Contains(f[0], "-"):
			in = strings.HasSuffix(f[5], ".sst") && filepath.Dir(f[5]) == dir
		case in && len(f) == 3 && f[0] == "Rss:":
			n, _ := strconv.Atoi(f[1])
			rss += n
		}
	}
	ssts, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ssts {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		size += int(fi.Size() >> 10)
	}
	return rss, size
}

// diskDir is a new directory beside the test, not under TMPDIR: on a tmpfs
// the page cache is the file, cannot be dropped, and may be mapped in large
// folios, so what a table leaves resident there says nothing about the
// disk-backed data directory this change is for.
func diskDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp(".", "resident-edgeq-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// fsType names dir's file system for a failure message.
func fsType(dir string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return err.Error()
	}
	return fmt.Sprintf("file system magic %#x", st.Type)
}

// TestTablesNotResidentEdgeq: a table that CreateTable wrote and a table
// that VerifyChecksum read leave none of their pages mapped into the
// process: RSS does not grow with the store (README.edgeq.md, "Resident
// pages").
func TestTablesNotResidentEdgeq(t *testing.T) {
	dir := diskDir(t)
	// No compactor: its reads would make tables resident.
	opt := DefaultOptions(dir).WithLogger(nil).WithNumCompactors(0).WithNumLevelZeroTablesStall(100).
		WithMemTableSize(1 << 20).WithBaseTableSize(1 << 20).
		WithValueThreshold(1 << 10).WithIndexCacheSize(0).WithBlockCacheSize(0).WithCompression(options.None)
	db, err := Open(opt)
	if err != nil {
		t.Fatal(err)
	}
	val := bytes.Repeat([]byte("v"), 200)
	for p := 0; p < 40; p++ {
		wb := db.NewWriteBatch()
		for j := 0; j < 1000; j++ {
			if err := wb.Set([]byte(fmt.Sprintf("key%04d%06d", p, j)), val); err != nil {
				t.Fatal(err)
			}
		}
		if err := wb.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	// Flushed memtables, written by CreateTable (each table's index stays
	// resident: Open reads it). Flushes run in the background and a table
	// being written is whole: wait (bounded) for 4 MiB of tables and no
	// flush under way.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var sz int64
		for _, ti := range db.Tables() {
			sz += int64(ti.OnDiskSize)
		}
		db.lock.RLock()
		flushing := len(db.imm)
		db.lock.RUnlock()
		if sz >= 4<<20 && flushing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tables hold %d bytes after 20 s, want 4 MiB to measure", sz)
		}
	}
	rss, size := tableRSS(t, dir)
	if rss > size/2 {
		t.Errorf("after CreateTable, tables resident: %d of %d kB (%s)", rss, size, fsType(dir))
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = Open(opt); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.VerifyChecksum(); err != nil {
		t.Fatal(err)
	}
	if rss, size = tableRSS(t, dir); rss > size/2 {
		t.Errorf("after VerifyChecksum, tables resident: %d of %d kB (%s)", rss, size, fsType(dir))
	}
}
