package storage

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

// Config configures a Badger store. The zero value is not valid: set Dir or
// InMemory.
type Config struct {
	// Dir is the data directory, created if missing. Required unless InMemory.
	Dir string
	// InMemory keeps everything in memory (tests): no files, no durability,
	// no checkpoint, and payloads must be smaller than 1 MiB.
	InMemory bool
	// Memory is the Badger memory profile: "small" (the default, for 256 MiB
	// devices) or "default". docs/design.md gives the numbers.
	Memory string
	// Logger receives the store's logs and Badger's warnings and errors.
	// Nil discards them.
	Logger *slog.Logger
	// EncryptionKey, when set (KeySize bytes), encrypts everything Badger
	// writes (encrypt.go). A store keeps the choice made at its creation.
	EncryptionKey []byte
}

// Validate checks cfg and names the offending field.
func (c Config) Validate() error {
	switch {
	case c.InMemory && c.Dir != "":
		return errors.New("storage.dir: must be empty for an in-memory store")
	case !c.InMemory && c.Dir == "":
		return errors.New("storage.dir: required")
	}
	if n := len(c.EncryptionKey); n != 0 && n != KeySize {
		return fmt.Errorf("storage.encryption_key_file: the key must be %d bytes, got %d", KeySize, n)
	}
	if _, ok := profiles[cmp.Or(c.Memory, ProfileSmall)]; !ok {
		return fmt.Errorf("storage.memory: unknown profile %q (want small or default)", c.Memory)
	}
	return nil
}

// ErrLocked is returned (wrapped) by Open when another process holds the
// data directory.
var ErrLocked = errors.New("locked by another process")

// ErrClosed is returned by every method called after Close. It wraps
// job.ErrShuttingDown.
var ErrClosed = fmt.Errorf("store closed: %w", job.ErrShuttingDown)

// Badger is the Badger v4 implementation of store.Store.
//
// All methods are safe for concurrent use, within the store.Store contract:
// at most one Txn is open at a time, and Close is called after the last Txn
// ended. Open starts two goroutines on disk: the maintenance loop
// (checkpoint, value-log GC) and a one-time table verification; Close stops
// the first and waits for both and for every View in progress.
type Badger struct {
	db  *badger.DB
	log *slog.Logger
	cfg Config

	// From Badger's options, fixed at Open.
	valueThreshold int64
	roomCount      int64 // entries a Txn may hold, with a safety margin
	roomSize       int64 // bytes (Badger's estimate) a Txn may hold, with a margin

	short bool // the store came back below the checkpoint at Open

	logs  *rotatedLogs // nil in memory (logsync.go)
	space *space       // nil in memory (space.go)

	gcSync func() error // b.sync; valueLogGC's Sync of rewritten entries (tests observe it)

	// committedSeq is the sequence the last committed Txn set; durableSeq
	// is the highest committedSeq seen at the start of a successful Sync.
	committedSeq atomic.Uint64
	durableSeq   atomic.Uint64

	// checkpointed is the durable sequence the checkpoint file was last
	// written for (the store's sequence at Open). Owned by the maintenance
	// goroutine while it runs, then by Close.
	checkpointed uint64

	// garbage counts the bytes of jobs deleted since the last reclaim.
	garbage atomic.Int64
	// reclaimMu serializes reclaims: two Flattens at once fail each other.
	reclaimMu sync.Mutex

	// writeMu is read-locked by Commit and locked by reclaim while Badger
	// flushes its memtables, during which Badger refuses writes.
	writeMu sync.RWMutex

	stop chan struct{}
	wg   sync.WaitGroup

	// mu orders View (read-locked for its whole run) before Close (locked):
	// Badger unmaps its files at Close and a read after it would fault.
	mu     sync.RWMutex
	closed atomic.Bool // set under mu
}

var _ store.Store = (*Badger)(nil)
var _ store.SpaceReserver = (*Badger)(nil)

// Open opens (or creates) the store of cfg. A Badger panic during Open is
// returned as an error. When the directory is held by another process the
// error wraps ErrLocked and says so.
func Open(cfg Config) (*Badger, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Memory = cmp.Or(cfg.Memory, ProfileSmall)
	log := cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)).With("component", "storage")
	b := &Badger{log: log, cfg: cfg, stop: make(chan struct{})}
	b.gcSync = b.sync

	if !cfg.InMemory {
		if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
			return nil, b.openError(err)
		}
		b.space = newSpace(filepath.Clean(cfg.Dir), profiles[cfg.Memory], log)
		// A directory already open in this process keeps its entry; Badger's
		// directory lock refuses this Open.
		spaces.LoadOrStore(b.space.dir, b.space)
		b.space.open()
	}
	opt := badgerOptions(cfg, log)
	if !cfg.InMemory {
		opt.Logger = badgerLogger{log: log, manifestWhole: manifestWhole(cfg.Dir, opt)}
	}
	db, err := openBadger(opt)
	if err != nil {
		b.forgetSpace()
		return nil, b.openError(err)
	}
	b.db = db
	if !cfg.InMemory {
		if b.logs, err = newRotatedLogs(cfg.Dir); err != nil {
			_ = db.Close()
			b.forgetSpace()
			return nil, fmt.Errorf("open store %s: %w", cfg.Dir, err)
		}
	}
	b.valueThreshold = opt.ValueThreshold
	b.roomCount = db.MaxBatchCount() * roomPercent / 100
	b.roomSize = db.MaxBatchSize() * roomPercent / 100

	var seq uint64
	if err := b.View(func(r store.ReadTx) error {
		var err error
		seq, err = r.Seq()
		return err
	}); err != nil {
		_ = db.Close()
		b.forgetSpace()
		return nil, fmt.Errorf("open store %s: read sequence: %w", cfg.Dir, err)
	}
	b.committedSeq.Store(seq)
	b.durableSeq.Store(seq)
	b.checkpointed = seq
	if !cfg.InMemory {
		b.checkStart(seq)
		b.wg.Go(b.maintain)
		b.wg.Go(b.verifyTables)
	}
	log.Info("store open", "dir", cfg.Dir, "memory", cfg.Memory, "in_memory", cfg.InMemory, "encrypted", len(cfg.EncryptionKey) > 0, "seq", seq)
	return b, nil
}

// forgetSpace takes the store's directory off the z.NoSpace map (space.go).
func (b *Badger) forgetSpace() {
	if b.space != nil {
		spaces.CompareAndDelete(b.space.dir, b.space)
	}
}

// Reserve admits an enqueue of about bytes bytes, or refuses it with an
// error wrapping job.ErrDiskFull when writing it would leave less free space
// than the store needs for its own next files (doc.go, "Full disk"). It
// reads the file system's free space at least once per MiB admitted. Safe
// for concurrent use; in memory it always admits.
func (b *Badger) Reserve(jobs []job.New) error {
	return b.reserveBytes(reserveCost(jobs))
}

// reserveBytes admits an enqueue of about bytes bytes (Reserve).
func (b *Badger) reserveBytes(bytes int) error {
	if b.space == nil || b.closed.Load() {
		return nil
	}
	return b.space.admit(int64(bytes))
}

// openBadger is badger.Open with its panics (it panics on some corrupt
// files) turned into errors.
func openBadger(opt badger.Options) (db *badger.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("badger panicked: %v", r)
		}
	}()
	return badger.Open(opt)
}

func (b *Badger) openError(err error) error {
	if strings.Contains(err.Error(), "Cannot acquire directory lock") {
		return fmt.Errorf("data dir %s is %w (is edgeq already running?)", b.cfg.Dir, ErrLocked)
	}
	if isNoSpace(err) {
		return fmt.Errorf("open store %s: %w: %w", b.cfg.Dir, job.ErrDiskFull, err)
	}
	if errors.Is(err, badger.ErrEncryptionKeyMismatch) {
		if len(b.cfg.EncryptionKey) == 0 {
			return fmt.Errorf("open store %s: it is encrypted and no key was given (storage.encryption_key_file): %w", b.cfg.Dir, keyError(err))
		}
		return fmt.Errorf("open store %s: %w", b.cfg.Dir, keyError(err))
	}
	return fmt.Errorf("open store %s: %w", b.cfg.Dir, err)
}

// Close syncs, writes the final checkpoint and closes the database. It waits
// for the maintenance goroutine and for Views in progress. It is
// idempotent: calls after the first return nil.
func (b *Badger) Close() (err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return nil
	}
	b.closed.Store(true)
	close(b.stop)
	b.wg.Wait()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("close store %s: badger panicked: %v", b.cfg.Dir, r)
		}
	}()
	if !b.cfg.InMemory {
		// The checkpoint is written while we still hold the directory lock.
		if err := b.sync(); err != nil {
			b.log.Error("final sync", "err", err)
		} else if err := b.checkpoint(); err != nil {
			b.log.Error("final checkpoint", "err", err)
		}
	}
	defer b.forgetSpace()
	if err := b.db.Close(); err != nil {
		return translate("close store", err)
	}
	b.log.Info("store closed", "dir", b.cfg.Dir, "seq", b.durableSeq.Load())
	return nil
}

// Short reports whether the store came back at Open with a lower sequence
// than its last checkpoint: Badger lost committed, synced writes (it
// truncates its logs at a corrupt record). Safe for concurrent use.
func (b *Badger) Short() bool { return b.short }

// DiskUsage returns the bytes of the LSM tree and of the value log. Badger
// refreshes the figures about once a minute. Safe for concurrent use.
func (b *Badger) DiskUsage() (lsm, vlog int64) {
	if b.closed.Load() {
		return 0, 0
	}
	return b.db.Size()
}

// Sync makes every committed transaction durable: it fsyncs the active
// memtable's WAL and the value log (db.Sync), and the WAL and value-log
// files Badger rotated away from since the last Sync (logsync.go). One call
// serves every commit before it: the engine's group commit.
func (b *Badger) Sync() error {
	if b.closed.Load() {
		return ErrClosed
	}
	return b.sync()
}

func (b *Badger) sync() (err error) {
	defer b.recovered(&err, "sync")
	seq := b.committedSeq.Load()
	if err := b.db.Sync(); err != nil {
		return translate("sync", err)
	}
	if b.logs != nil {
		if err := b.logs.syncRotated(); err != nil {
			return translate("sync", err)
		}
	}
	for {
		d := b.durableSeq.Load()
		if seq <= d || b.durableSeq.CompareAndSwap(d, seq) {
			return nil
		}
	}
}

// Begin opens the write transaction. Safe for concurrent use, but the
// store.Store contract allows one open Txn at a time.
// After Close it returns a Txn whose methods answer ErrClosed.
func (b *Badger) Begin() store.Txn {
	if b.closed.Load() {
		return &txn{reader: reader{b: b}, done: true}
	}
	return &txn{reader: reader{b: b, txn: b.db.NewTransaction(true)}, count: 1, size: txnBaseSize}
}

// View runs fn in a read-only snapshot. Close waits for it. Safe for
// concurrent use.
func (b *Badger) View(fn func(store.ReadTx) error) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed.Load() {
		return ErrClosed
	}
	t := b.db.NewTransaction(false)
	defer t.Discard()
	return fn(reader{b: b, txn: t})
}

// recovered turns a Badger panic on the calling goroutine into an error
// (deferred at the top of every method that calls into Badger).
func (b *Badger) recovered(err *error, op string) {
	if r := recover(); r != nil {
		b.log.Error("badger panicked", "op", op, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		*err = fmt.Errorf("%s: badger panicked: %v", op, r)
	}
}

// translate wraps a Badger error with op, mapping a full disk to
// job.ErrDiskFull; nil stays nil. badger.ErrKeyNotFound is handled where it
// is expected.
func translate(op string, err error) error {
	if err == nil {
		return nil
	}
	if isNoSpace(err) {
		return fmt.Errorf("%s: %w: %w", op, job.ErrDiskFull, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// isNoSpace reports ENOSPC. Badger's y.Wrap formats the cause with %v
// instead of wrapping it, so the message is checked too.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), syscall.ENOSPC.Error())
}
