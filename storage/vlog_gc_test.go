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
	val := bytes.Repeat([]byte{'v'}, 10<<10)
	key := func(i int) []byte { return fmt.Appendf(nil, "gc/%06d", i) }
	const n = 4000
	for i := 0; i < n; i += 100 {
		if err := b.db.Update(func(txn *badger.Txn) error {
			for j := i; j < i+100; j++ {
				if err := txn.Set(key(j), val); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i += 500 {
		if err := b.db.Update(func(txn *badger.Txn) error {
			for j := i; j < i+500; j++ {
				if j%8 != 0 {
					if err := txn.Delete(key(j)); err != nil {
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
	if err := b.db.View(func(txn *badger.Txn) error {
		for i := 0; i < n; i += 8 {
			item, err := txn.Get(key(i))
			if err != nil {
				return fmt.Errorf("key %d: %w", i, err)
			}
			if err := item.Value(func(v []byte) error {
				if !bytes.Equal(v, val) {
					return fmt.Errorf("key %d: value changed", i)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
