package storage

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/goleak"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
	"github.com/edgeq/edgeq/engine/storetest"
)

// logBuffer collects slog output for assertions. Safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// fitsJob asks tx whether one more enqueued job with payload fits, as the
// engine asks before an enqueue's writes.
func fitsJob(tx store.Txn, payload []byte) bool {
	return tx.Fits(store.Op{Enqueue: []job.New{{Payload: payload}}})
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testLogger logs into the test's output, so a failure shows what Badger said.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// openDir opens a store on dir and closes it at the end of the test.
func openDir(t *testing.T, dir string, log *slog.Logger) *Badger {
	t.Helper()
	if log == nil {
		log = testLogger(t)
	}
	b, err := Open(Config{Dir: dir, Logger: log})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

func TestConformanceDisk(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store { return openDir(t, t.TempDir(), nil) },
		Reopen: func(t *testing.T, s store.Store) store.Store {
			b := s.(*Badger)
			if err := b.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return openDir(t, b.cfg.Dir, nil)
		},
	})
}

func TestConformanceInMemory(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store {
			b, err := Open(Config{InMemory: true, Logger: testLogger(t)})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { _ = b.Close() })
			return b
		},
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"dir", Config{Dir: "/x"}, ""},
		{"in memory", Config{InMemory: true, Memory: "default"}, ""},
		{"no dir", Config{}, "storage.dir: required"},
		{"dir and in memory", Config{Dir: "/x", InMemory: true}, "storage.dir: must be empty"},
		{"unknown profile", Config{Dir: "/x", Memory: "huge"}, `storage.memory: unknown profile "huge"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.wantErr)
			}
			if tc.wantErr != "" {
				if _, err := Open(tc.cfg); err == nil {
					t.Errorf("Open accepted an invalid config")
				}
			}
		})
	}
}

func TestProfiles(t *testing.T) {
	for name := range profiles {
		t.Run(name, func(t *testing.T) {
			b, err := Open(Config{Dir: t.TempDir(), Memory: name, Logger: testLogger(t)})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer b.Close()
			opt := b.db.Opts()
			if opt.BaseTableSize != opt.MemTableSize {
				t.Errorf("BaseTableSize %d != MemTableSize %d (see docs/design.md, 32-bit ARM)", opt.BaseTableSize, opt.MemTableSize)
			}
			// Each table a compaction builds holds a buffer of twice the
			// table size on the Go heap: a 256 MiB box has room for few
			// (docs/BENCHMARKS.md, "Peak memory without tuning").
			if name == ProfileSmall && opt.CompactionBuilders != 1 {
				t.Errorf("CompactionBuilders %d, want 1", opt.CompactionBuilders)
			}
			if opt.SyncWrites || opt.DetectConflicts || opt.NumVersionsToKeep != 1 {
				t.Errorf("SyncWrites %v, DetectConflicts %v, NumVersionsToKeep %d; want false, false, 1",
					opt.SyncWrites, opt.DetectConflicts, opt.NumVersionsToKeep)
			}
			// A 1 MiB payload goes to the value log and fits its files.
			if opt.ValueLogFileSize <= 1<<20 || opt.ValueThreshold > 1<<10 {
				t.Errorf("ValueLogFileSize %d, ValueThreshold %d", opt.ValueLogFileSize, opt.ValueThreshold)
			}
			// A transaction holds at least 512 job-sized enqueues (256
			// bytes of payload, a 20-byte idempotency key): larger engine
			// batches take two commits and one Sync.
			tx := b.Begin()
			defer tx.Discard()
			news := make([]job.New, 512)
			for i := range news {
				news[i] = job.New{Queue: "q", Payload: make([]byte, 256), Key: strings.Repeat("k", 20)}
			}
			if !tx.Fits(store.Op{Enqueue: news}) {
				t.Errorf("Fits refuses 512 jobs of 256 bytes (MaxBatchSize %d, MaxBatchCount %d)",
					b.db.MaxBatchSize(), b.db.MaxBatchCount())
			}
		})
	}
}

func TestDurableAfterSync(t *testing.T) {
	dir := t.TempDir()
	b := openDir(t, dir, nil)
	j := &job.Job{ID: 1, Queue: "q", State: job.StateReady, ReadySeq: 1, Payload: bytes.Repeat([]byte("x"), 2000)}
	tx := b.Begin()
	if err := tx.Create(j); err != nil {
		t.Fatal(err)
	}
	if err := tx.SetSeq(1); err != nil {
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
	if got := mustReadCheckpoint(t, dir); got != 1 {
		t.Errorf("checkpoint after Close = %d, want 1", got)
	}
	b = openDir(t, dir, nil)
	if b.Short() {
		t.Error("Short() = true after a clean restart")
	}
	err := b.View(func(r store.ReadTx) error {
		got, err := r.Job(1, true)
		if err != nil {
			return err
		}
		if !bytes.Equal(got.Payload, j.Payload) {
			t.Errorf("payload after restart: %d bytes, want %d", len(got.Payload), len(j.Payload))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func mustReadCheckpoint(t *testing.T, dir string) uint64 {
	t.Helper()
	seq, err := readCheckpoint(filepath.Join(dir, CheckpointFile))
	if err != nil {
		t.Fatalf("read checkpoint: %v", err)
	}
	return seq
}

func commitSeq(t *testing.T, b *Badger, seq uint64) {
	t.Helper()
	tx := b.Begin()
	if err := tx.SetSeq(seq); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestCheckpoint(t *testing.T) {
	t.Run("tracks synced sequence only", func(t *testing.T) {
		dir := t.TempDir()
		b := openDir(t, dir, nil)
		commitSeq(t, b, 10)
		if err := b.Sync(); err != nil {
			t.Fatal(err)
		}
		if got := b.durableSeq.Load(); got != 10 {
			t.Errorf("durable seq after Sync = %d, want 10", got)
		}
		commitSeq(t, b, 11) // committed, never synced by the caller
		if got := b.durableSeq.Load(); got != 10 {
			t.Errorf("durable seq after an unsynced commit = %d, want 10", got)
		}
		// Close syncs before it writes the final checkpoint.
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if got := mustReadCheckpoint(t, dir); got != 11 {
			t.Errorf("checkpoint after Close = %d, want 11", got)
		}
	})

	t.Run("store came back short", func(t *testing.T) {
		dir := t.TempDir()
		b := openDir(t, dir, nil)
		commitSeq(t, b, 5)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		// The checkpoint claims more than the store holds: as if Badger
		// truncated its log after a corrupt record.
		if err := writeCheckpoint(filepath.Join(dir, CheckpointFile), 9); err != nil {
			t.Fatal(err)
		}
		var logs logBuffer
		b = openDir(t, dir, logs.logger())
		if !b.Short() {
			t.Error("Short() = false, want true")
		}
		out := logs.String()
		for _, want := range []string{"level=ERROR", `msg="store came back short"`, "checkpoint_seq=9", "store_seq=5"} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %q:\n%s", want, out)
			}
		}
		// Until a new sequence is synced the checkpoint keeps its claim.
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if got := mustReadCheckpoint(t, dir); got != 9 {
			t.Errorf("checkpoint after an idle run = %d, want 9 (kept)", got)
		}
	})

	tests := []struct {
		name    string
		content *string // nil: no file
		seq     uint64  // the store's
		want    string
	}{
		{"missing on a new store", nil, 0, ""},
		{"missing", nil, 3, `level=WARN msg="no checkpoint`},
		{"unreadable", ptr("garbage\n"), 3, `level=WARN msg="unreadable checkpoint`},
		{"equal", ptr(fmt.Sprintf(checkpointFormat, 3)), 3, ""},
		{"behind the store", ptr(fmt.Sprintf(checkpointFormat, 2)), 3, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.seq > 0 {
				b := openDir(t, dir, nil)
				commitSeq(t, b, tc.seq)
				if err := b.Close(); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(dir, CheckpointFile)
			_ = os.Remove(path)
			if tc.content != nil {
				if err := os.WriteFile(path, []byte(*tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var logs logBuffer
			b := openDir(t, dir, logs.logger())
			if b.Short() {
				t.Error("Short() = true")
			}
			out := logs.String()
			if strings.Contains(out, "level=ERROR") {
				t.Errorf("logged an error:\n%s", out)
			}
			if tc.want != "" && !strings.Contains(out, tc.want) {
				t.Errorf("log lacks %q:\n%s", tc.want, out)
			}
			if tc.want == "" && strings.Contains(out, "level=WARN") {
				t.Errorf("logged a warning:\n%s", out)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestDirectoryLocked(t *testing.T) {
	dir := t.TempDir()
	openDir(t, dir, nil)
	b, err := Open(Config{Dir: dir})
	if err == nil {
		b.Close()
		t.Fatal("second Open of the same directory succeeded")
	}
	want := fmt.Sprintf("data dir %s is locked by another process (is edgeq already running?)", dir)
	if err.Error() != want || !errors.Is(err, ErrLocked) {
		t.Errorf("second Open: %v\nwant: %s (wrapping ErrLocked)", err, want)
	}
}

func TestClose(t *testing.T) {
	for _, inMemory := range []bool{false, true} {
		t.Run(fmt.Sprintf("in memory %v", inMemory), func(t *testing.T) {
			// Close leaves no goroutine behind, Badger's included.
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			cfg := Config{InMemory: inMemory}
			if !inMemory {
				cfg.Dir = t.TempDir()
			}
			b, err := Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			tx := b.Begin()
			if err := b.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := b.Close(); err != nil {
				t.Errorf("second Close: %v, want nil", err)
			}
			// Everything after Close answers ErrClosed instead of panicking.
			checks := map[string]error{
				"Sync":   b.Sync(),
				"View":   b.View(func(store.ReadTx) error { return nil }),
				"Create": tx.Create(&job.Job{ID: 1, Queue: "q", State: job.StateReady}),
				"Commit": tx.Commit(),
			}
			_, err = tx.Job(1, false)
			checks["Job"] = err
			_, err = tx.Ready("q", 0, 1)
			checks["Ready"] = err
			checks["Begin after Close"] = b.Begin().SetSeq(1)
			for name, err := range checks {
				if !errors.Is(err, ErrClosed) || !errors.Is(err, job.ErrShuttingDown) {
					t.Errorf("%s after Close: %v, want ErrClosed", name, err)
				}
			}
			tx.Discard()
			if lsm, vlog := b.DiskUsage(); lsm != 0 || vlog != 0 {
				t.Errorf("DiskUsage after Close = %d, %d", lsm, vlog)
			}
		})
	}
}

func TestTranslate(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		diskFull bool
	}{
		{"wrapped ENOSPC", fmt.Errorf("write: %w", syscall.ENOSPC), true},
		{"ENOSPC formatted by y.Wrap", fmt.Errorf("While opening memtable err: %+v", &os.PathError{Op: "write", Path: "/d/00001.mem", Err: syscall.ENOSPC}), true},
		{"other", errors.New("boom"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := translate("commit", tc.err)
			if got := errors.Is(err, job.ErrDiskFull); got != tc.diskFull {
				t.Errorf("translate(%v) = %v: ErrDiskFull %v, want %v", tc.err, err, got, tc.diskFull)
			}
			if !strings.HasPrefix(err.Error(), "commit: ") {
				t.Errorf("translate(%v) = %v: no context", tc.err, err)
			}
		})
	}
	if translate("x", nil) != nil {
		t.Error("translate(nil) != nil")
	}
}

// TestTxnTooBig: a caller that ignores Fits gets a wrapped ErrTxnTooBig
// for the operation that does not fit, and nothing of it is written.
func TestTxnTooBig(t *testing.T) {
	b := openDir(t, t.TempDir(), nil)
	tx := b.Begin()
	defer tx.Discard()
	var err error
	n := 0
	for ; n < 1_000_000 && err == nil; n++ {
		err = tx.Create(&job.Job{ID: job.ID(n + 1), Queue: "q", State: job.StateReady, ReadySeq: uint64(n + 1), Payload: make([]byte, 512)})
	}
	if !strings.Contains(fmt.Sprint(err), "Txn is too big") {
		t.Fatalf("after %d creates: err = %v, want ErrTxnTooBig", n, err)
	}
	if _, jerr := tx.Job(job.ID(n), false); !errors.Is(jerr, job.ErrNotFound) {
		t.Errorf("the create that did not fit was half written: %v", jerr)
	}
	if err := tx.Commit(); err != nil {
		t.Errorf("Commit of what fitted: %v", err)
	}
}

// allKeys lists every live key in the store, in order.
func allKeys(t *testing.T, b *Badger) []string {
	t.Helper()
	var keys []string
	err := b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, string(it.Item().KeyCopy(nil)))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("iterate keys: %v", err)
	}
	return keys
}

// TestEntriesPerJob walks the whole keyspace after each Create and Delete:
// a job is its record (with the payload inline up to inlinePayloadMax
// bytes), its payload key only above that, and its index entries; Delete
// given Size, as the engine's ack does, leaves no key of the job behind
// under any prefix.
func TestEntriesPerJob(t *testing.T) {
	for _, inMemory := range []bool{false, true} {
		t.Run(fmt.Sprintf("inMemory=%v", inMemory), func(t *testing.T) {
			var b *Badger
			if inMemory {
				var err error
				if b, err = Open(Config{InMemory: true, Logger: testLogger(t)}); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = b.Close() })
			} else {
				b = openDir(t, t.TempDir(), nil)
			}
			commit := func(fn func(tx store.Txn) error) {
				t.Helper()
				tx := b.Begin()
				if err := fn(tx); err != nil {
					tx.Discard()
					t.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			// A bystander whose keys must survive every Delete.
			bystander := &job.Job{ID: 1, Queue: "q", State: job.StateReady, ReadySeq: 1, Payload: make([]byte, 600)}
			commit(func(tx store.Txn) error { return tx.Create(bystander) })
			base := allKeys(t, b)

			id := job.ID(1)
			for _, size := range []int{0, 10, inlinePayloadMax, inlinePayloadMax + 1, 200 << 10} {
				for _, st := range []job.State{job.StateReady, job.StateDelayed, job.StateLeased, job.StateDead} {
					id++
					j := &job.Job{ID: id, Queue: "q", State: st, ReadySeq: uint64(id), RunAt: time.Unix(0, int64(id)),
						ExpiresAt: time.Unix(1000, 0), LeaseExpires: time.Unix(60, 0), Payload: bytes.Repeat([]byte{byte(id)}, size)}
					commit(func(tx store.Txn) error { return tx.Create(j) })
					idx, err := indexEntries(j)
					if err != nil {
						t.Fatal(err)
					}
					want := 1 + len(idx)
					if size > inlinePayloadMax {
						want++
					}
					if got := len(allKeys(t, b)) - len(base); got != want {
						t.Errorf("%s job with %d bytes of payload: %d keys, want %d", st, size, got, want)
					}
					del := &job.Job{ID: j.ID, Queue: j.Queue, State: j.State, Size: size, ReadySeq: j.ReadySeq,
						RunAt: j.RunAt, ExpiresAt: j.ExpiresAt, LeaseExpires: j.LeaseExpires}
					commit(func(tx store.Txn) error { return tx.Delete(del) })
					if got := allKeys(t, b); !slices.Equal(got, base) {
						var left []string
						for _, k := range got {
							if !slices.Contains(base, k) {
								left = append(left, fmt.Sprintf("%x", k))
							}
						}
						t.Errorf("%s job with %d bytes of payload: keys left after Delete: %v", st, size, left)
					}
				}
			}
		})
	}
}

// TestRecordV1Refused: the pre-release record format is refused by name.
func TestRecordV1Refused(t *testing.T) {
	rec := encodeRecord(&job.Job{ID: 1, Queue: "q", State: job.StateReady}, nil)
	rec[0] = recordV1
	_, _, err := decodeRecord(rec)
	if err == nil || !strings.Contains(err.Error(), "record version 1 (pre-release format) is not supported") {
		t.Errorf("decodeRecord(v1) = %v, want the pre-release error", err)
	}
}

// rawRecord returns the record key's value and Badger version as stored.
func rawRecord(t *testing.T, b *Badger, id job.ID) (val []byte, version uint64) {
	t.Helper()
	err := b.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(metaKey(id))
		if err != nil {
			return err
		}
		version = item.Version()
		val, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		t.Fatalf("read record %d: %v", id, err)
	}
	return val, version
}

// TestLeaseLeavesRecord: a lease (and an extension) that changes nothing
// but the lease fields writes only index entries, the ready (and expiry)
// delete and the leased set: the record key keeps its value byte for byte
// and its Badger version. The leased entry carries the lease. A nack then
// rewrites the record and drops the leased entry; a lease and an ack leave
// no key of the job behind.
func TestLeaseLeavesRecord(t *testing.T) {
	for _, size := range []int{10, inlinePayloadMax + 88} {
		for _, expiry := range []bool{false, true} {
			t.Run(fmt.Sprintf("%dB/expiry=%v", size, expiry), func(t *testing.T) {
				b := openDir(t, t.TempDir(), nil)
				commit := func(fn func(tx *txn)) {
					t.Helper()
					tx := b.Begin().(*txn)
					fn(tx)
					if err := tx.Commit(); err != nil {
						t.Fatal(err)
					}
				}
				bystander := &job.Job{ID: 1, Queue: "q", State: job.StateReady, ReadySeq: 1, Payload: make([]byte, 600)}
				commit(func(tx *txn) {
					if err := tx.Create(bystander); err != nil {
						t.Fatal(err)
					}
				})
				base := allKeys(t, b)
				j := &job.Job{ID: 2, Queue: "q", State: job.StateReady, ReadySeq: 2, Attempt: 1, MaxAttempts: 5,
					CreatedAt: time.Unix(100, 0), RunAt: time.Unix(100, 0), TTR: time.Minute,
					Headers: map[string]string{"h": "v"}, Payload: bytes.Repeat([]byte{7}, size)}
				if expiry {
					j.ExpiresAt = time.Unix(1000, 0)
				}
				commit(func(tx *txn) {
					if err := tx.Create(j); err != nil {
						t.Fatal(err)
					}
				})
				rec, ver := rawRecord(t, b, j.ID)

				// step updates in one Txn and returns the writes it issued.
				step := func(fn func(tx *txn, prev *job.Job) *job.Job) (writes int64, next *job.Job) {
					t.Helper()
					commit(func(tx *txn) {
						prev, err := tx.Job(j.ID, false)
						if err != nil {
							t.Fatal(err)
						}
						before := tx.count
						next = fn(tx, prev)
						if err := tx.Update(prev, next); err != nil {
							t.Fatal(err)
						}
						writes = tx.count - before
					})
					return writes, next
				}
				wantWrites := int64(2) // ready delete, leased set
				if expiry {
					wantWrites++ // expiry delete
				}
				n, leased := step(func(_ *txn, prev *job.Job) *job.Job {
					next := prev.Clone()
					next.State, next.Attempt, next.LeaseID, next.LeaseExpires = job.StateLeased, 2, "lease-2", time.Unix(160, 5)
					return next
				})
				if n != wantWrites {
					t.Errorf("lease issued %d writes, want %d (no record)", n, wantWrites)
				}
				if got, v := rawRecord(t, b, j.ID); !bytes.Equal(got, rec) || v != ver {
					t.Errorf("lease rewrote the record (version %d → %d)", ver, v)
				}
				checkLeased := func(want *job.Job) {
					t.Helper()
					var v []byte
					if err := b.db.View(func(txn *badger.Txn) error {
						item, err := txn.Get(leasedKey(j.ID))
						if err != nil {
							return err
						}
						v, err = item.ValueCopy(nil)
						return err
					}); err != nil {
						t.Fatalf("leased entry: %v", err)
					}
					l, q, err := decodeLeasedValue(v)
					if err != nil || l != leaseOf(want) || string(q) != want.Queue {
						t.Errorf("leased entry = %+v %q, %v; want %+v %q", l, q, err, leaseOf(want), want.Queue)
					}
				}
				checkLeased(leased)

				n, extended := step(func(_ *txn, prev *job.Job) *job.Job {
					if prev.State != job.StateLeased || prev.Attempt != 2 || prev.LeaseID != "lease-2" {
						t.Errorf("read after the lease: %s attempt %d lease %q", prev.State, prev.Attempt, prev.LeaseID)
					}
					next := prev.Clone()
					next.LeaseExpires = time.Unix(220, 0)
					return next
				})
				if n != 1 {
					t.Errorf("extension issued %d writes, want 1 (the leased entry)", n)
				}
				if got, v := rawRecord(t, b, j.ID); !bytes.Equal(got, rec) || v != ver {
					t.Errorf("extension rewrote the record (version %d → %d)", ver, v)
				}
				checkLeased(extended)

				// Nack: the full path rewrites the record and drops the lease.
				_, _ = step(func(_ *txn, prev *job.Job) *job.Job {
					next := prev.Clone()
					next.State, next.ReadySeq, next.LeaseID, next.LeaseExpires = job.StateReady, 3, "", time.Time{}
					return next
				})
				if got, _ := rawRecord(t, b, j.ID); bytes.Equal(got, rec) {
					t.Error("nack did not rewrite the record")
				}
				for _, k := range allKeys(t, b) {
					if k[0] == prefixLeased {
						t.Errorf("leased entry %x left after the nack", k)
					}
				}

				// Lease again, then ack: nothing of the job is left.
				_, _ = step(func(_ *txn, prev *job.Job) *job.Job {
					if prev.State != job.StateReady || prev.Attempt != 2 {
						t.Errorf("read after the nack: %s attempt %d, want ready attempt 2", prev.State, prev.Attempt)
					}
					next := prev.Clone()
					next.State, next.Attempt, next.LeaseID, next.LeaseExpires = job.StateLeased, 3, "lease-3", time.Unix(300, 0)
					return next
				})
				commit(func(tx *txn) {
					prev, err := tx.Job(j.ID, false)
					if err != nil {
						t.Fatal(err)
					}
					if err := tx.Delete(prev); err != nil {
						t.Fatal(err)
					}
				})
				if got := allKeys(t, b); !slices.Equal(got, base) {
					t.Errorf("keys after lease and ack: %x, want %x", got, base)
				}
			})
		}
	}
}
