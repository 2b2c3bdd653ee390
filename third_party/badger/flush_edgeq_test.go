package badger

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// TestFlushDropsShadowedVersionsEdgeq: a memtable flush writes, of the
// versions of a key that no reader can see any more, only the newest, as
// compaction does; a deleted key keeps its tombstone; a version a reader's
// snapshot still needs is kept.
func TestFlushDropsShadowedVersionsEdgeq(t *testing.T) {
	db, err := Open(DefaultOptions(t.TempDir()).WithLogger(nil).WithNumCompactors(0).
		WithNumVersionsToKeep(1).WithValueThreshold(1 << 10))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	set := func(k, v string) {
		t.Helper()
		if err := db.Update(func(txn *Txn) error { return txn.Set([]byte(k), []byte(v)) }); err != nil {
			t.Fatal(err)
		}
	}
	del := func(k string) {
		t.Helper()
		if err := db.Update(func(txn *Txn) error { return txn.Delete([]byte(k)) }); err != nil {
			t.Fatal(err)
		}
	}
	// flush waits until every read at or below readTs is done (the read
	// watermark settles in a goroutine), writes the active memtable to a
	// level-0 table and answers its key count (every version counts).
	flush := func(readTs uint64) uint32 {
		t.Helper()
		if err := db.orc.readMark.WaitForMark(context.Background(), readTs); err != nil {
			t.Fatal(err)
		}
		db.lock.Lock()
		mt := db.mt
		db.lock.Unlock()
		before := map[uint64]bool{}
		for _, ti := range db.Tables() {
			before[ti.ID] = true
		}
		if err := db.handleMemTableFlush(mt, nil); err != nil {
			t.Fatal(err)
		}
		for _, ti := range db.Tables() {
			if !before[ti.ID] {
				return ti.KeyCount
			}
		}
		t.Fatal("the flush made no table")
		return 0
	}
	// read ends a read at the latest version, so that the watermark can
	// pass every write; it answers that version.
	read := func() uint64 {
		txn := db.NewTransaction(false)
		defer txn.Discard()
		return txn.readTs
	}
	get := func(txn *Txn, k string) (string, error) {
		item, err := txn.Get([]byte(k))
		if err != nil {
			return "", err
		}
		v, err := item.ValueCopy(nil)
		return string(v), err
	}

	// Nobody reads: of job's three versions one is written, of gone's two
	// only its tombstone.
	set("job", "created")
	set("job", "leased")
	set("job", "acked")
	set("gone", "created")
	del("gone")
	if got, want := flush(read()), uint32(2); got != want {
		t.Errorf("flushed table holds %d versions, want %d (job's newest, gone's tombstone)", got, want)
	}

	// A snapshot taken before the update needs the old version: kept.
	set("held", "old")
	snap := db.NewTransaction(false)
	defer snap.Discard()
	set("held", "new")
	// The memtable still holds job's and gone's versions: job 1, gone 1
	// (its tombstone), held 2 (the snapshot reads at "old").
	if got, want := flush(snap.readTs-1), uint32(4); got != want {
		t.Errorf("with a snapshot open: flushed table holds %d versions, want %d", got, want)
	}
	if v, err := get(snap, "held"); err != nil || v != "old" {
		t.Errorf("snapshot reads held = %q, %v; want old", v, err)
	}
	snap.Discard()

	// What the tables answer is what was written last.
	err = db.View(func(txn *Txn) error {
		for k, want := range map[string]string{"job": "acked", "held": "new"} {
			if v, err := get(txn, k); err != nil || !bytes.Equal([]byte(v), []byte(want)) {
				t.Errorf("%s = %q, %v; want %q", k, v, err, want)
			}
		}
		if _, err := get(txn, "gone"); !errors.Is(err, ErrKeyNotFound) {
			t.Errorf("gone: %v, want ErrKeyNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
