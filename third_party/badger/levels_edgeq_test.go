package badger

import (
	"fmt"
	"os"
	"testing"

	"github.com/dgraph-io/badger/v4/table"
)

// TestCompactionTableFailureEdgeq: when one of a compaction's new tables
// cannot be created (a full disk; here a file already holds its name), the
// compaction must fail and leave every key where it was, not commit without
// that table's keys.
func TestCompactionTableFailureEdgeq(t *testing.T) {
	dir := t.TempDir()
	opt := DefaultOptions(dir).WithLogger(nil).WithNumCompactors(0).
		WithMemTableSize(1 << 20).WithBaseTableSize(1 << 18).
		WithNumLevelZeroTables(20).WithNumLevelZeroTablesStall(40).WithValueThreshold(1 << 10)
	db, err := Open(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	const n = 20000
	key := func(i int) []byte { return []byte(fmt.Sprintf("key%08d", i)) }
	val := make([]byte, 200)
	// Strided, so that every level-0 table spans the whole key range and
	// the compaction merges them all into several new tables.
	for p := 0; p < 5; p++ {
		wb := db.NewWriteBatch()
		for j := p; j < n; j += 5 {
			if err := wb.Set(key(j), val); err != nil {
				t.Fatal(err)
			}
		}
		if err := wb.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	// Push the memtables to level 0 (no compactor runs).
	if err := db.DropPrefix([]byte("nothing")); err != nil {
		t.Fatal(err)
	}
	db.lock.Lock()
	db.imm = append(db.imm, db.mt)
	imm := db.imm
	db.lock.Unlock()
	for _, mt := range imm {
		if !mt.sl.Empty() {
			if err := db.handleMemTableFlush(mt, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	db.lock.Lock()
	db.imm = db.imm[:0]
	db.mt, err = db.newMemTable()
	db.lock.Unlock()
	if err != nil {
		t.Fatal(err)
	}

	// Take the names of the compaction's new tables but the first.
	next := db.lc.nextFileID.Load()
	for id := next + 1; id < next+200; id++ {
		if err := os.WriteFile(table.NewFilename(id, dir), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.lc.doCompact(175, compactionPriority{level: 0, score: 1.71}); err == nil {
		t.Error("the compaction succeeded although its tables could not be created")
	}
	for id := next + 1; id < next+200; id++ {
		os.Remove(table.NewFilename(id, dir))
	}
	missing := 0
	err = db.View(func(txn *Txn) error {
		for i := 0; i < n; i++ {
			if _, err := txn.Get(key(i)); err != nil {
				missing++
			}
		}
		return nil
	})
	if err != nil || missing > 0 {
		t.Fatalf("after the failed compaction %d of %d keys are missing (%v)", missing, n, err)
	}
}

// TestMemtableRotationFailureEdgeq: when the next memtable cannot be made
// (a full disk; here a directory holds its WAL's name), the write fails and
// the DB keeps working: later writes fail the same way instead of stopping
// the process, and succeed once the memtable can be made.
func TestMemtableRotationFailureEdgeq(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(DefaultOptions(dir).WithLogger(nil).WithMemTableSize(1 << 20).WithValueThreshold(1 << 10))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.lock.Lock()
	blocked := db.mtFilePath(db.nextMemFid)
	db.lock.Unlock()
	if err := os.Mkdir(blocked, 0o700); err != nil {
		t.Fatal(err)
	}

	key := func(i int) []byte { return []byte(fmt.Sprintf("key%08d", i)) }
	val := make([]byte, 1000)
	var written []int
	failed := 0
	for i := 0; i < 5000 && failed < 3; i++ {
		if err := db.Update(func(txn *Txn) error { return txn.Set(key(i), val) }); err != nil {
			failed++
			continue
		}
		written = append(written, i)
	}
	if failed < 3 {
		t.Fatalf("no write failed with the next memtable's name taken (%d written)", len(written))
	}
	if err := os.Remove(blocked); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(txn *Txn) error { return txn.Set(key(-1), val) }); err != nil {
		t.Fatalf("write once the memtable can be made: %v", err)
	}
	err = db.View(func(txn *Txn) error {
		for _, i := range append(written, -1) {
			if _, err := txn.Get(key(i)); err != nil {
				return fmt.Errorf("key %d: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
