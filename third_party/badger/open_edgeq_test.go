package badger

import (
	"os"
	"path/filepath"
	"testing"
)

// TestOpenEmptyLogsEdgeq: a power cut can leave a WAL or value-log file
// empty (a deleted WAL whose truncation reached the disk and whose unlink
// did not; a new file whose name reached the disk and whose size did not).
// Such a file holds nothing: Open must go on without it, not fail.
func TestOpenEmptyLogsEdgeq(t *testing.T) {
	dir := t.TempDir()
	opt := DefaultOptions(dir).WithLogger(nil).WithValueThreshold(1 << 10)
	db, err := Open(opt)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 4<<10) // in the value log
	if err := db.Update(func(txn *Txn) error { return txn.Set([]byte("k"), big) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"00099.mem", "000000.vlog"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	db, err = Open(opt)
	if err != nil {
		t.Fatalf("open with empty log files: %v", err)
	}
	defer db.Close()
	err = db.View(func(txn *Txn) error {
		item, err := txn.Get([]byte("k"))
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		if err == nil && len(v) != len(big) {
			t.Errorf("value of %d bytes, want %d", len(v), len(big))
		}
		return err
	})
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
}
