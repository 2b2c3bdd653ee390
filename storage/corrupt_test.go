package storage

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

// crashCopy builds a store whose directory holds every kind of file, and
// returns a copy of it taken while it was open, as a power cut would leave
// it: tables (.sst) from a first run, a value log (.vlog) with large
// payloads, and a memtable WAL (.mem) with synced, unflushed writes.
func crashCopy(t *testing.T) (dir string, payloads map[job.ID][]byte) {
	t.Helper()
	src := t.TempDir()
	b, err := Open(Config{Dir: src, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	payloads = make(map[job.ID][]byte)
	fill := func(from, n int) {
		tx := b.Begin()
		for i := from; i < from+n; i++ {
			size := 200
			if i%2 == 0 {
				size = 4000 // to the value log
			}
			p := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, size/2)
			payloads[job.ID(i)] = p
			j := &job.Job{ID: job.ID(i), Queue: "q", State: job.StateReady, ReadySeq: uint64(i), Payload: p}
			if err := tx.Create(j); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.SetSeq(uint64(from + n - 1)); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := b.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	fill(1, 500)
	if err := b.Close(); err != nil { // flushes the memtable to a table
		t.Fatal(err)
	}
	b, err = Open(Config{Dir: src, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	fill(501, 500)
	dir = t.TempDir()
	copyDir(t, src, dir)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// The checkpoint the maintenance loop writes within a second of the
	// last Sync (copied, it may be older).
	if err := writeCheckpoint(filepath.Join(dir, CheckpointFile), 1000); err != nil {
		t.Fatal(err)
	}
	return dir, payloads
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "LOCK" {
			continue // a crashed process holds no lock
		}
		in, err := os.Open(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(to, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// files lists dir's files with the suffix, sorted.
func files(t *testing.T, dir, suffix string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+suffix))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

// used returns the file's bytes up to its last non-zero byte: Badger
// preallocates its value log and memtable files.
func used(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimRight(data, "\x00")
}

// truncateHalf cuts the file in the middle of its used part (mid-record).
func truncateHalf(t *testing.T, path string) {
	t.Helper()
	if err := os.Truncate(path, int64(len(used(t, path))/2+7)); err != nil {
		t.Fatal(err)
	}
}

// flipBytes inverts n bytes at the fraction at of the file's used part.
func flipBytes(t *testing.T, path string, at float64, n int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	off := int(float64(len(used(t, path))) * at)
	for i := off; i < off+n && i < len(data); i++ {
		data[i] ^= 0xff
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCorruption damages the files of a crashed store and checks that Open
// either fails with a clear error or recovers and logs what it found, and
// that a recovered store never answers a wrong payload: a read gives the
// job as written, ErrNotFound or an error.
//
// Left out: damage that makes Badger fail in its own goroutines, where no
// recover() can reach. Badger's y.Check and y.AssertTrue call log.Fatal
// (the process exits) in the memtable flush and compaction goroutines, e.g.
// when a table it builds or reads there is inconsistent; the corruptions
// here are the ones Badger detects on the opening goroutine or at read time.
func TestCorruption(t *testing.T) {
	tests := []struct {
		name      string
		corrupt   func(t *testing.T, dir string)
		wantOpen  string // "": Open succeeds; else a substring of its error
		mayRefuse bool   // Open may also fail with a clear error naming the dir
		wantLog   string // a substring of the logs, "" for none required
		wantShort bool
		wantLost  bool // some jobs may read as not found or fail
	}{
		{name: "none", corrupt: func(*testing.T, string) {}},
		{
			name: "truncated vlog",
			corrupt: func(t *testing.T, dir string) {
				vl := files(t, dir, ".vlog")
				truncateHalf(t, vl[len(vl)-1])
			},
			// The WAL replay stops at the first transaction whose value
			// lies past the value log's end (third_party/badger) and drops
			// the later ones: the store is back below the checkpoint.
			wantLog:   "store came back short",
			wantShort: true,
			wantLost:  true,
		},
		{
			name: "truncated mem",
			corrupt: func(t *testing.T, dir string) {
				truncateHalf(t, files(t, dir, ".mem")[0])
			},
			// The WAL replay stops at the torn transaction: the store is
			// back at the first run's sequence, below the checkpoint.
			wantLog:   "store came back short",
			wantShort: true,
			wantLost:  true,
		},
		{
			name: "garbage in mem",
			corrupt: func(t *testing.T, dir string) {
				flipBytes(t, files(t, dir, ".mem")[0], 0.5, 64)
			},
			wantLog:   "store came back short",
			wantShort: true,
			wantLost:  true,
			// Where the flipped bytes land depends on the records' layout:
			// Badger truncates the log at a bad checksum, but refuses a
			// length field that overflows.
			mayRefuse: true,
		},
		{
			name: "flipped bytes in sst data",
			corrupt: func(t *testing.T, dir string) {
				flipBytes(t, files(t, dir, ".sst")[0], 0.3, 16)
			},
			wantLog:  "store corrupt: table verification failed",
			wantLost: true,
		},
		{
			name: "flipped bytes in sst index",
			corrupt: func(t *testing.T, dir string) {
				flipBytes(t, files(t, dir, ".sst")[0], 0.995, 8)
			},
			wantOpen: "checksum mismatch",
		},
		{
			name: "garbage manifest",
			corrupt: func(t *testing.T, dir string) {
				if err := os.WriteFile(filepath.Join(dir, "MANIFEST"), bytes.Repeat([]byte("garbage!"), 100), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantOpen: "manifest has bad magic",
		},
		{
			name: "truncated manifest",
			corrupt: func(t *testing.T, dir string) {
				truncateHalf(t, filepath.Join(dir, "MANIFEST"))
			},
			// Badger drops the torn change and deletes the table it listed.
			wantLog:  "badger deleted a table file that its damaged MANIFEST does not list: jobs may be lost",
			wantLost: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, payloads := crashCopy(t)
			tc.corrupt(t, dir)
			var logs logBuffer
			b, err := Open(Config{Dir: dir, Logger: logs.logger()})
			if tc.wantOpen != "" {
				if err == nil {
					b.Close()
					t.Fatalf("Open succeeded, want an error containing %q", tc.wantOpen)
				}
				if !strings.Contains(err.Error(), tc.wantOpen) || !strings.HasPrefix(err.Error(), "open store "+dir) {
					t.Errorf("Open: %v\nwant an error about %s containing %q", err, dir, tc.wantOpen)
				}
				return
			}
			if err != nil && tc.mayRefuse {
				if !strings.HasPrefix(err.Error(), "open store "+dir) {
					t.Errorf("Open: %v\nwant a clear error about %s", err, dir)
				}
				t.Logf("Open refused the damaged store, as it may: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("Open: %v (want it to recover)", err)
			}
			defer b.Close()
			b.verifyTables() // what Open started in the background, run here to its end

			found, failed := 0, 0
			err = b.View(func(r store.ReadTx) error {
				for id, want := range payloads {
					j, err := r.Job(id, true)
					switch {
					case err == nil && !bytes.Equal(j.Payload, want):
						t.Errorf("job %d: wrong payload (%d bytes, want %d)", id, len(j.Payload), len(want))
					case err == nil:
						found++
					default:
						failed++
					}
				}
				if _, err := r.Counts(func(string) bool { return true }); err != nil {
					t.Logf("Counts: %v", err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d of %d jobs read back, %d not found or failed", found, len(payloads), failed)
			if !tc.wantLost && found != len(payloads) {
				t.Errorf("%d of %d jobs read back, want all", found, len(payloads))
			}
			if tc.wantLost && found == len(payloads) {
				t.Errorf("every job read back: the corruption did not hit data, the test is not testing")
			}
			if got := b.Short(); got != tc.wantShort {
				t.Errorf("Short() = %v, want %v", got, tc.wantShort)
			}
			out := logs.String()
			if tc.wantLog != "" && !strings.Contains(out, tc.wantLog) {
				t.Errorf("logs lack %q:\n%s", tc.wantLog, out)
			}
			if tc.wantLog == "" && strings.Contains(out, "level=ERROR") {
				t.Errorf("errors logged for an undamaged store:\n%s", out)
			}
		})
	}
}
