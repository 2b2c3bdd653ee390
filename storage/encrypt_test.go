package storage

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
	"github.com/edgeq/edgeq/engine/storetest"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

// openKeyed opens dir with key, closed at cleanup.
func openKeyed(t *testing.T, dir string, key []byte) *Badger {
	t.Helper()
	b, err := Open(Config{Dir: dir, EncryptionKey: key, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open(%s) with key: %v", dir, err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestConformanceEncrypted(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store { return openKeyed(t, t.TempDir(), testKey(7)) },
		Reopen: func(t *testing.T, s store.Store) store.Store {
			b := s.(*Badger)
			if err := b.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return openKeyed(t, b.cfg.Dir, testKey(7))
		},
	})
}

// marker is a payload that a plaintext store holds verbatim on disk.
var marker = []byte("edgeq-secret-telemetry-0123456789")

// writeMarked writes jobs carrying marker, inline (small) and under their
// own key (large), flushes them to tables and closes the store, leaving
// both the logs and the tables on disk.
func writeMarked(t *testing.T, dir string, key []byte) {
	t.Helper()
	b, err := Open(Config{Dir: dir, EncryptionKey: key, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	tx := b.Begin()
	for i := 1; i <= 200; i++ {
		p := marker
		if i%2 == 0 {
			p = bytes.Repeat(marker, 100) // over the inline and value thresholds
		}
		j := &job.Job{ID: job.ID(i), Queue: "q", State: job.StateReady, ReadySeq: uint64(i), Payload: p,
			Headers: map[string]string{"device": string(marker)}}
		if err := tx.Create(j); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.SetSeq(200); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// filesHolding lists the files under dir that contain marker.
func filesHolding(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, marker) {
			found = append(found, filepath.Base(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func TestEncryptedAtRest(t *testing.T) {
	// The control: a plaintext store holds the marker in its files, so the
	// search below could find it.
	plain := t.TempDir()
	writeMarked(t, plain, nil)
	if len(filesHolding(t, plain)) == 0 {
		t.Fatal("the plaintext store's files do not hold the marker: the search finds nothing")
	}

	dir := t.TempDir()
	writeMarked(t, dir, testKey(1))
	if found := filesHolding(t, dir); len(found) > 0 {
		t.Fatalf("encrypted store: files holding a payload in the clear: %v", found)
	}
	b := openKeyed(t, dir, testKey(1))
	err := b.View(func(r store.ReadTx) error {
		for _, id := range []job.ID{1, 2} {
			got, err := r.Job(id, true)
			if err != nil {
				return err
			}
			if !bytes.Contains(got.Payload, marker) || got.Headers["device"] != string(marker) {
				return fmt.Errorf("job %d read back as %q", id, got.Payload)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestEncryptionKeyMismatch(t *testing.T) {
	enc, plain := t.TempDir(), t.TempDir()
	writeMarked(t, enc, testKey(1))
	writeMarked(t, plain, nil)
	for name, tc := range map[string]struct {
		dir  string
		key  []byte
		want string
	}{
		"wrong key":              {enc, testKey(2), "the encryption key does not open this store"},
		"no key":                 {enc, nil, "it is encrypted and no key was given (storage.encryption_key_file)"},
		"key on plaintext store": {plain, testKey(1), "the encryption key does not open this store"},
	} {
		b, err := Open(Config{Dir: tc.dir, EncryptionKey: tc.key, Logger: testLogger(t)})
		if err == nil {
			_ = b.Close()
			t.Errorf("%s: opened", name)
			continue
		}
		if !errors.Is(err, ErrKeyMismatch) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want ErrKeyMismatch saying %q", name, err, tc.want)
		}
	}
	if _, err := Open(Config{Dir: enc, EncryptionKey: []byte("short")}); err == nil ||
		!strings.Contains(err.Error(), "storage.encryption_key_file: the key must be 32 bytes, got 5") {
		t.Errorf("short key: %v", err)
	}
}

func TestRotateKey(t *testing.T) {
	dir := t.TempDir()
	writeMarked(t, dir, testKey(1))
	reg := filepath.Join(dir, "KEYREGISTRY")
	before, err := os.ReadFile(reg)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		old, new []byte
		want     string
	}{
		"wrong current key": {testKey(9), testKey(2), "the encryption key does not open this store"},
		"same key":          {testKey(1), testKey(1), "the new key is the current key"},
		"short new key":     {testKey(1), []byte("x"), "the new key must be 32 bytes, got 1"},
		"no current key":    {nil, testKey(2), "the current key must be 32 bytes, got 0"},
	} {
		if err := RotateKey(dir, tc.old, tc.new); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", name, err, tc.want)
		}
	}
	if after, _ := os.ReadFile(reg); !bytes.Equal(after, before) {
		t.Fatal("a refused rotation changed the key registry")
	}

	open := openKeyed(t, dir, testKey(1))
	if err := RotateKey(dir, testKey(1), testKey(2)); !errors.Is(err, ErrLocked) {
		t.Errorf("rotation of an open store: err %v, want ErrLocked", err)
	}
	if err := open.Close(); err != nil {
		t.Fatal(err)
	}

	if err := RotateKey(dir, testKey(1), testKey(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{Dir: dir, EncryptionKey: testKey(1)}); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("old key after rotation: err %v, want ErrKeyMismatch", err)
	}
	b := openKeyed(t, dir, testKey(2))
	if err := b.View(func(r store.ReadTx) error {
		got, err := r.Job(2, true)
		if err == nil && !bytes.Contains(got.Payload, marker) {
			err = fmt.Errorf("payload %q", got.Payload)
		}
		return err
	}); err != nil {
		t.Fatalf("new key after rotation: %v", err)
	}
	if found := filesHolding(t, dir); len(found) > 0 {
		t.Errorf("files holding a payload in the clear after rotation: %v", found)
	}
}

func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	key := testKey(0xab)
	write := func(name string, b []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	for name, tc := range map[string]struct {
		b    []byte
		mode os.FileMode
		want string // "" for key
	}{
		"hex":             {[]byte(hex.EncodeToString(key) + "\n"), 0o600, ""},
		"raw":             {key, 0o600, ""},
		"group readable":  {key, 0o640, ""},
		"world readable":  {key, 0o644, "is open to others (mode 0644)"},
		"group writable":  {key, 0o660, "is open to others (mode 0660)"},
		"short":           {[]byte("0011"), 0o600, "want 32 raw bytes or 64 hex digits, found 4 bytes"},
		"bad hex, 64 len": {[]byte(strings.Repeat("zz", 32)), 0o600, "found 64 bytes"},
	} {
		got, err := ReadKeyFile(write(strings.ReplaceAll(name, " ", "-"), tc.b, tc.mode))
		switch {
		case tc.want == "" && (err != nil || !bytes.Equal(got, key)):
			t.Errorf("%s: %x, %v; want the key", name, got, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err %v, want %q", name, err, tc.want)
		}
	}
	if _, err := ReadKeyFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
