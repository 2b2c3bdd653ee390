package storage

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// vlogFiles lists the value-log files in dir.
func vlogFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".vlog") {
			names = append(names, e.Name())
		}
	}
	return names
}

// TestValueLogGCSyncsBeforeDeleting: Badger's value-log GC rewrites a
// file's live entries (without an fsync, SyncWrites being off) and then
// deletes the file. The store must make the rewritten entries durable
// before the old file goes: at the Sync the GC asks for, the rewritten file
// still exists, and after the GC it is gone.
func TestValueLogGCSyncsBeforeDeleting(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(Config{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	// 40 MB of 10 KiB values (value log, 32 MiB files); keep one in 8, so
	// the first file is mostly garbage but still has live entries to move.
	const txns, size = 40, 10 << 10
	kept := func(j int) bool { return j%8 == 0 }
	writeRaw(t, b.db, "gc", txns, size)
	for i := range txns {
		if err := b.db.Update(func(txn *badger.Txn) error {
			for j := range 100 {
				if !kept(j) {
					if err := txn.Delete(rawKey("gc", i, j)); err != nil {
						return err
					}
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	// Badger counts a deleted value as discardable when a compaction drops
	// it. Each reopen flushes the memtable into a level-0 table; with four
	// of them, level 0 is over its limit (3) and Flatten compacts it.
	for i := range 4 {
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if b, err = Open(Config{Dir: dir, Logger: testLogger(t)}); err != nil {
			t.Fatal(err)
		}
		if err := b.db.Update(func(txn *badger.Txn) error { return txn.Set(fmt.Appendf(nil, "filler/%d", i), []byte("x")) }); err != nil {
			t.Fatal(err)
		}
	}
	defer b.Close()
	if err := b.db.Flatten(1); err != nil {
		t.Fatal(err)
	}
	before := vlogFiles(t, dir)
	var atSync []string
	b.gcSync = func() error {
		atSync = vlogFiles(t, dir)
		return b.sync()
	}
	if err := b.valueLogGC(); err != nil {
		t.Fatal(err)
	}
	after := vlogFiles(t, dir)
	var gone []string
	for _, f := range before {
		if !slices.Contains(after, f) {
			gone = append(gone, f)
		}
	}
	if len(gone) == 0 {
		t.Fatalf("value-log GC deleted nothing (files before %v, after %v): the test set-up no longer makes garbage", before, after)
	}
	if atSync == nil {
		t.Fatalf("value-log GC deleted %v without a Sync", gone)
	}
	for _, f := range gone {
		if !slices.Contains(atSync, f) {
			t.Fatalf("%s was deleted before the Sync of its rewritten entries (files at the Sync: %v)", f, atSync)
		}
	}
	// The kept entries are still readable after the rewrite.
	val := bytes.Repeat([]byte{'v'}, size)
	if err := b.db.View(func(txn *badger.Txn) error {
		for i := range txns {
			for j := range 100 {
				if !kept(j) {
					continue
				}
				item, err := txn.Get(rawKey("gc", i, j))
				if err != nil {
					return fmt.Errorf("key %d/%d: %w", i, j, err)
				}
				if err := item.Value(func(v []byte) error {
					if !bytes.Equal(v, val) {
						return fmt.Errorf("key %d/%d: value changed", i, j)
					}
					return nil
				}); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
