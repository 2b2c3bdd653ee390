package badger

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// copyDirEdgeq copies the files of src into a new directory.
func copyDirEdgeq(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dst, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestWALWrittenWithPwriteEdgeq: the memtable's WAL records reach the file
// by pwrite, not through its shared mapping (each page written through it
// cost a page fault, and each Sync a TLB flush per page): with the mapping
// swapped for a copy on the heap while the records are written, a copy of
// the directory taken while the DB is open (a crash) still replays every
// record.
func TestWALWrittenWithPwriteEdgeq(t *testing.T) {
	dir := t.TempDir()
	opt := DefaultOptions(dir).WithLogger(nil).WithMemTableSize(8 << 20).WithValueThreshold(1 << 10).
		WithValueLogFileSize(1 << 20)
	db, err := Open(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	wal := db.mt.wal
	mapped := wal.Data
	wal.Data = bytes.Clone(mapped) // a write through it misses the file
	val := bytes.Repeat([]byte("w"), 300)
	const txns, perTxn = 40, 100 // about 1.3 MB of WAL, well within the memtable
	for i := range txns {
		err := db.Update(func(txn *Txn) error {
			for j := range perTxn {
				if err := txn.Set([]byte(fmt.Sprintf("key%03d%03d", i, j)), val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	wal.Data = mapped

	opt.Dir = copyDirEdgeq(t, dir)
	opt.ValueDir = opt.Dir
	crashed, err := Open(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer crashed.Close()
	err = crashed.View(func(txn *Txn) error {
		for i := range txns {
			for j := range perTxn {
				item, err := txn.Get([]byte(fmt.Sprintf("key%03d%03d", i, j)))
				if err != nil {
					return fmt.Errorf("key%03d%03d: %w", i, j, err)
				}
				v, err := item.ValueCopy(nil)
				if err != nil {
					return err
				}
				if !bytes.Equal(v, val) {
					return fmt.Errorf("key%03d%03d: wrong value", i, j)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
