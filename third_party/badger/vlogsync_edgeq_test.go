package badger

import (
	"bytes"
	"errors"
	"testing"
)

// TestValueLogSyncSkipsCleanFileEdgeq: DB.Sync syncs the value log only
// when something was written to it since its last sync. A value inline in
// the LSM (below ValueThreshold) writes nothing there, so a Sync after it
// leaves the value log alone; a value written to it, or a new value-log
// file, is synced by the next Sync, and a sync that failed is tried again.
func TestValueLogSyncSkipsCleanFileEdgeq(t *testing.T) {
	db, err := Open(DefaultOptions(t.TempDir()).WithLogger(nil).WithValueThreshold(1 << 10))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var synced []uint32 // fids of the value-log files synced
	var fail error
	db.vlog.syncFile = func(lf *logFile) error {
		if fail != nil {
			return fail
		}
		synced = append(synced, lf.fid)
		return lf.Sync()
	}
	set := func(k string, size int) {
		t.Helper()
		if err := db.Update(func(txn *Txn) error { return txn.Set([]byte(k), bytes.Repeat([]byte{'v'}, size)) }); err != nil {
			t.Fatal(err)
		}
	}
	syncs := func(step string, want int) {
		t.Helper()
		synced = synced[:0]
		if err := db.Sync(); err != nil {
			t.Fatal(err)
		}
		if len(synced) != want {
			t.Errorf("%s: the value log was synced %d times, want %d", step, len(synced), want)
		}
	}
	syncs("first Sync (the file's header is unsynced)", 1)
	syncs("Sync with nothing written", 0)
	set("inline", 100)
	syncs("Sync after an inline value", 0)
	set("big", 4<<10)
	syncs("Sync after a value in the value log", 1)
	syncs("Sync after that", 0)

	set("big2", 4<<10)
	fail = errTestSync
	if err := db.Sync(); err == nil {
		t.Fatal("Sync: want the value log's sync error")
	}
	fail = nil
	syncs("Sync after a failed one", 1)

	if _, err := db.vlog.createVlogFile(); err != nil {
		t.Fatal(err)
	}
	syncs("Sync after a new value-log file", 1)
	syncs("Sync after that", 0)
}

var errTestSync = errors.New("test: sync failed")
