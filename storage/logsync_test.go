package storage

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// TestSyncCoversRotatedLogs: records committed before Badger rotates the
// memtable WAL or the value-log file, then synced, were in a file that
// db.Sync does not fsync; Sync must fsync it (logsync.go). Raw Badger
// writes fill the files: the rotation does not depend on edgeq's keys.
func TestSyncCoversRotatedLogs(t *testing.T) {
	b, err := Open(Config{Dir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var mu sync.Mutex
	var synced []string
	b.logs.fsync = func(path string) error {
		mu.Lock()
		synced = append(synced, filepath.Base(path))
		mu.Unlock()
		return fsyncPath(path)
	}
	takeSynced := func() []string {
		mu.Lock()
		defer mu.Unlock()
		s := synced
		synced = nil
		return s
	}
	writeRaw(t, b.db, "small", 1, 100)
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	if s := takeSynced(); len(s) != 0 {
		t.Fatalf("no rotation, yet Sync fsynced %v", s)
	}

	firstWAL := walLog.path("", b.logs.kinds[0].active)
	writeRaw(t, b.db, "wal", 100, 500) // 5 MB through 4 MiB memtables: one rotation at least
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	if s := takeSynced(); !slices.Contains(s, firstWAL) {
		t.Fatalf("after the memtable rotated, Sync fsynced %v, want %s among them", s, firstWAL)
	}

	firstVlog := valueLog.path("", b.logs.kinds[1].active)
	writeRaw(t, b.db, "vlog", 40, 10<<10) // 40 MB of 10 KiB values through 32 MiB value-log files
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	if s := takeSynced(); !slices.Contains(s, firstVlog) {
		t.Fatalf("after the value log rotated, Sync fsynced %v, want %s among them", s, firstVlog)
	}

	writeRaw(t, b.db, "small2", 1, 100)
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	if s := takeSynced(); len(s) != 0 {
		t.Fatalf("no new rotation, yet Sync fsynced %v", s)
	}
}

// rawKey is the key of value j of transaction i that writeRaw commits.
func rawKey(prefix string, i, j int) []byte { return fmt.Appendf(nil, "%s/%06d/%03d", prefix, i, j) }

// writeRaw commits txns transactions of 100 values of size bytes straight
// into Badger (rawKey), without a Sync: raw writes fill Badger's log files
// whatever edgeq's keys are.
func writeRaw(t *testing.T, db *badger.DB, prefix string, txns, size int) {
	t.Helper()
	val := bytes.Repeat([]byte{'v'}, size)
	for i := range txns {
		if err := db.Update(func(txn *badger.Txn) error {
			for j := range 100 {
				if err := txn.Set(rawKey(prefix, i, j), val); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}
