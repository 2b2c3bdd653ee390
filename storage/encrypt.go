package storage

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/sys/unix"
)

// Encryption at rest (doc.go, "Encryption"). Badger encrypts every table,
// value log and write-ahead log with AES in CTR mode under data keys that
// it rotates every ten days; the data keys live in its KEYREGISTRY file,
// encrypted under the key edgeq gives it. Changing that key rewrites the
// registry only (RotateKey).

// KeySize is the length of an encryption key in bytes: AES-256.
const KeySize = 32

// Cache sizes an encrypted store needs: Badger decrypts a block or a
// table index into its cache on every read and refuses to open an encrypted
// store without a block cache; without an index cache it would keep every
// table's decrypted index on the Go heap, growing with the store. The small
// profile has neither cache; these bound what encryption adds to it.
const (
	encryptedBlockCache = 4 << 20
	encryptedIndexCache = 2 << 20
)

// ErrKeyMismatch is returned (wrapped) by Open and RotateKey when the key
// given does not open the store: a store is encrypted, or not, from its
// creation, with the key it was created with or last rotated to.
var ErrKeyMismatch = errors.New("the encryption key does not open this store")

// ParseKey reads a key file's contents: 64 hex digits (with or without a
// trailing newline) or exactly 32 raw bytes.
func ParseKey(b []byte) ([]byte, error) {
	if t := bytes.TrimSpace(b); len(t) == 2*KeySize {
		if k, err := hex.DecodeString(string(t)); err == nil {
			return k, nil
		}
	}
	if len(b) == KeySize {
		return bytes.Clone(b), nil
	}
	return nil, fmt.Errorf("want %d raw bytes or %d hex digits, found %d bytes", KeySize, 2*KeySize, len(b))
}

// ReadKeyFile reads and parses a key file. It refuses a file that others
// may read or write, or that its group may write: a key others can read
// protects nothing.
func ReadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o027 != 0 {
		return nil, fmt.Errorf("%s is open to others (mode %04o): make it readable by its owner (chmod 0600) or also its group (0640) only", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// RotateKey re-encrypts the data keys of the store in dir under newKey;
// oldKey must open it. The store must not be open (it takes the store's
// directory lock, so it refuses with ErrLocked while edgeq runs); the
// registry is replaced atomically (written beside it, synced, renamed, the
// directory synced), so a crash leaves either key working, never neither.
// Both keys are required: a store is created encrypted or not, and stays so.
func RotateKey(dir string, oldKey, newKey []byte) error {
	switch {
	case len(oldKey) != KeySize:
		return fmt.Errorf("rotate key: the current key must be %d bytes, got %d", KeySize, len(oldKey))
	case len(newKey) != KeySize:
		return fmt.Errorf("rotate key: the new key must be %d bytes, got %d", KeySize, len(newKey))
	case bytes.Equal(oldKey, newKey):
		return errors.New("rotate key: the new key is the current key")
	}
	reg := filepath.Join(dir, badger.KeyRegistryFileName)
	if _, err := os.Stat(reg); err != nil {
		return fmt.Errorf("rotate key: %s is not an edgeq store: %w", dir, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("rotate key: %w", err)
	}
	defer d.Close()
	// Badger's own directory lock (dir_unix.go): an exclusive flock on the
	// directory.
	if err := unix.Flock(int(d.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return fmt.Errorf("rotate key: data dir %s is %w (stop edgeq first)", dir, ErrLocked)
	}
	defer unix.Flock(int(d.Fd()), unix.LOCK_UN)

	opt := badger.KeyRegistryOptions{Dir: dir, ReadOnly: true, EncryptionKey: oldKey}
	kr, err := badger.OpenKeyRegistry(opt)
	if err != nil {
		return fmt.Errorf("rotate key: %s: %w", dir, keyError(err))
	}
	opt.EncryptionKey = newKey
	if err := badger.WriteKeyRegistry(kr, opt); err != nil {
		return fmt.Errorf("rotate key: %s: %w", dir, err)
	}
	return nil
}

// keyError marks Badger's key mismatch as ErrKeyMismatch.
func keyError(err error) error {
	if errors.Is(err, badger.ErrEncryptionKeyMismatch) {
		return fmt.Errorf("%w (Badger: %w)", ErrKeyMismatch, err)
	}
	return err
}
