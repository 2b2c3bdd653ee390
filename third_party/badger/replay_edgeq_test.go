package badger

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReplayStopsAtLostValueEdgeq: a power cut can keep a WAL record (the
// kernel writes the mapped WAL back on its own) and lose the value-log
// bytes it points to, which no fsync covered yet. Replay must stop at the
// first transaction whose value lies past the value log's recovered end:
// the key must not come back pointing at nothing, and neither may the
// writes that followed it (they were never synced either).
func TestReplayStopsAtLostValueEdgeq(t *testing.T) {
	dir := t.TempDir()
	opt := func(dir string) Options {
		return DefaultOptions(dir).WithLogger(nil).WithValueThreshold(1 << 10).WithValueLogFileSize(1 << 20)
	}
	db, err := Open(opt(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	big := func(c byte) []byte { return []byte(strings.Repeat(string(c), 4<<10)) } // in the value log
	set := func(kv ...[]byte) {
		t.Helper()
		err := db.Update(func(txn *Txn) error {
			for i := 0; i < len(kv); i += 2 {
				if err := txn.Set(kv[i], kv[i+1]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	set([]byte("synced"), big('a'), []byte("synced-inline"), []byte("x"))
	if err := db.Sync(); err != nil {
		t.Fatal(err)
	}
	vlogName := filepath.Base(vlogFilePath(dir, db.vlog.maxFid))
	durable, err := os.ReadFile(filepath.Join(dir, vlogName))
	if err != nil {
		t.Fatal(err)
	}
	set([]byte("lost"), big('b'), []byte("lost-inline"), []byte("y")) // its value past the durable end
	set([]byte("later"), []byte("z"))                                 // inline, after it

	// A later WAL, as a memtable rotation would leave it: one inline write,
	// taken from a store of its own.
	other := t.TempDir()
	db3, err := Open(opt(other))
	if err != nil {
		t.Fatal(err)
	}
	if err := db3.Update(func(txn *Txn) error { return txn.Set([]byte("later-wal"), []byte("w")) }); err != nil {
		t.Fatal(err)
	}
	laterWAL, err := os.ReadFile(db3.mtFilePath(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := db3.Close(); err != nil {
		t.Fatal(err)
	}

	// The cut: every file as it is now (the WAL holds all three
	// transactions), but the value log as of the Sync.
	cut := t.TempDir()
	if err := os.WriteFile(filepath.Join(cut, "00099.mem"), laterWAL, 0o600); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() == lockFile {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == vlogName {
			b = durable
		}
		if err := os.WriteFile(filepath.Join(cut, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	db2, err := Open(opt(cut))
	if err != nil {
		t.Fatalf("open after the cut: %v", err)
	}
	defer db2.Close()
	err = db2.View(func(txn *Txn) error {
		for k, want := range map[string][]byte{"synced": big('a'), "synced-inline": []byte("x")} {
			item, err := txn.Get([]byte(k))
			if err != nil {
				t.Errorf("get %s: %v", k, err)
				continue
			}
			if v, err := item.ValueCopy(nil); err != nil || string(v) != string(want) {
				t.Errorf("read %s: %d bytes, %v; want the %d written", k, len(v), err, len(want))
			}
		}
		for _, k := range []string{"lost", "lost-inline", "later", "later-wal"} {
			item, err := txn.Get([]byte(k))
			if errors.Is(err, ErrKeyNotFound) {
				continue
			}
			if err != nil {
				t.Errorf("get %s: %v, want ErrKeyNotFound", k, err)
				continue
			}
			v, err := item.ValueCopy(nil)
			t.Errorf("get %s: found (%q..., %v), want ErrKeyNotFound", k, v[:min(len(v), 8)], err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
