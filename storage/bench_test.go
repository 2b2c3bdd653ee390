package storage

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

// BenchmarkRawGroupCommit is Badger's ceiling for edgeq's durable enqueue:
// transactions of 1024 job-sized records (a 17-byte key, 256 bytes of
// payload and 80 of record) committed and then made durable with one
// db.Sync, with the production (small) profile on disk. The engine's
// enqueue writes more per job (index entries, framing), so it lands below
// this figure.
//
//	go test -run x -bench RawGroupCommit -benchtime 2s -count 3 ./storage/
func BenchmarkRawGroupCommit(b *testing.B) {
	const batch = 1024
	db := openRaw(b, false)
	defer db.Close()
	val := bytes.Repeat([]byte{'v'}, 256+80)
	var n uint64
	b.ReportAllocs()
	b.SetBytes(batch * int64(17+len(val)))
	for b.Loop() {
		txn := db.NewTransaction(true)
		for range batch {
			n++
			key := make([]byte, 17)
			key[0] = prefixMeta
			binary.BigEndian.PutUint64(key[1:], n)
			binary.BigEndian.PutUint64(key[9:], n)
			if err := txn.Set(key, val); err != nil {
				b.Fatal(err)
			}
		}
		if err := txn.Commit(); err != nil {
			b.Fatal(err)
		}
		if err := db.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkBacklogRSS fills a store (small profile, on disk) with N jobs of
// 256-byte payloads through Txn.Create in Fits-sized transactions, each
// synced, then reports the process's resident memory after a GC: VmRSS
// (including the mapped table and log files it touched) and RssAnon (the
// heap). The target is flat with N and under 64 MiB. One fill per
// sub-benchmark; run it with -benchtime 1x. RssFile is the pages of the
// memory-mapped tables that Badger wrote through the mapping: clean page
// cache, reclaimable, but counted in VmRSS (see docs/design.md, "Memory profiles").
//
//	go test -run x -bench BacklogRSS -benchtime 1x -count 3 ./storage/
func BenchmarkBacklogRSS(b *testing.B) {
	for _, n := range []int{30_000, 300_000} {
		for _, limit := range []int64{0, 64 << 20} {
			name := fmt.Sprintf("N=%d/gomemlimit=off", n)
			if limit > 0 {
				name = fmt.Sprintf("N=%d/gomemlimit=%dMiB", n, limit>>20)
			}
			b.Run(name, func(b *testing.B) { benchBacklogRSS(b, n, limit) })
		}
	}
}

// benchBacklogRSS fills n jobs with the Go soft memory limit set to limit
// (0: none, the Go default), as main.go would set it from GOMEMLIMIT.
func benchBacklogRSS(b *testing.B, n int, limit int64) {
	if limit > 0 {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(limit))
	}
	s, err := Open(Config{Dir: b.TempDir(), Logger: testLoggerB(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ReportAllocs()
	fill(b, s, n, bytes.Repeat([]byte{'p'}, 256))
	var rss, anon, file float64
	for b.Loop() {
		runtime.GC()
		rss, anon, file = procStatus(b, "VmRSS"), procStatus(b, "RssAnon"), procStatus(b, "RssFile")
	}
	b.ReportMetric(rss, "VmRSS-MiB")
	b.ReportMetric(anon, "RssAnon-MiB")
	b.ReportMetric(file, "RssFile-MiB")
	b.ReportMetric(float64(tableBytes(b, s.cfg.Dir))/(1<<20), "sst-MiB")
}

// fill creates n ready jobs in Fits-sized, synced transactions, as the
// engine's enqueues would.
func fill(b *testing.B, s *Badger, n int, payload []byte) {
	b.Helper()
	tx := s.Begin()
	for i := 1; i <= n; i++ {
		if !fitsJob(tx, payload) {
			if err := tx.SetSeq(uint64(i - 1)); err != nil {
				b.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
			if err := s.Sync(); err != nil {
				b.Fatal(err)
			}
			tx = s.Begin()
		}
		j := &job.Job{ID: job.ID(i), Queue: "telemetry", State: job.StateReady, ReadySeq: uint64(i),
			MaxAttempts: 5, TTR: 60e9, ContentType: "application/json", Payload: payload}
		if err := tx.Create(j); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.SetSeq(uint64(n)); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		b.Fatal(err)
	}
}

// tableBytes sums the sizes of the LSM tables in dir (db.Size lags by up
// to a minute).
func tableBytes(tb testing.TB, dir string) int64 {
	tb.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	if err != nil {
		tb.Fatal(err)
	}
	var n int64
	for _, f := range m {
		if fi, err := os.Stat(f); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// procStatus reads a "kB" field of /proc/self/status, in MiB.
func procStatus(b *testing.B, field string) float64 {
	b.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
		if err != nil {
			b.Fatalf("%s: %v", field, err)
		}
		return kb / 1024
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// openRaw opens raw Badger, no edgeq, with the small profile's options on
// a temporary directory; syncWrites makes every commit durable by itself.
func openRaw(b *testing.B, syncWrites bool) *badger.DB {
	b.Helper()
	opt := badgerOptions(Config{Dir: b.TempDir(), Memory: ProfileSmall}, testLoggerB(b))
	opt.SyncWrites = syncWrites
	db, err := badger.Open(opt)
	if err != nil {
		b.Fatal(err)
	}
	return db
}

func testLoggerB(b *testing.B) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriterB{b}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriterB struct{ b *testing.B }

func (w testWriterB) Write(p []byte) (int, error) {
	w.b.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// BenchmarkRawJobLayout is the same ceiling for the writes edgeq really
// makes per enqueued job, in transactions of jobs=N jobs each followed by
// one db.Sync: entries=3 is the layout for a payload above inlinePayloadMax
// (a framed payload, a record and a ready-index entry), entries=2 the one
// for a small payload (the record with the payload inline, and the ready
// entry), entries=1 a record alone (the floor no layout with an index can
// reach). jobs=64 is the most a batch of 64 producers can hold; the largest
// size that fits one small-profile transaction is the ceiling. Badger's cost
// is per entry: with 64-job transactions (small profile, amd64) entries=3
// made 35k jobs/s, entries=2 43k and entries=1 52k (docs/design.md, "Inline payloads").
//
//	go test -run x -bench RawJobLayout -benchtime 2s -count 3 ./storage/
func BenchmarkRawJobLayout(b *testing.B) {
	type kv struct {
		prefix byte
		val    []byte
	}
	const payload = 256
	index := kv{prefixReady, bytes.Repeat([]byte{'i'}, 16)}
	layouts := []struct {
		entries int
		kvs     []kv
	}{
		{3, []kv{{prefixPayload, bytes.Repeat([]byte{'p'}, payload+payloadFrame)}, {prefixMeta, bytes.Repeat([]byte{'r'}, 80)}, index}},
		// Record fields, payload length and placement, CRC, payload.
		{2, []kv{{prefixMeta, bytes.Repeat([]byte{'r'}, 80+2+1+4+payload)}, index}},
		{1, []kv{{prefixMeta, bytes.Repeat([]byte{'r'}, 80+2+1+4+payload)}}},
	}
	for _, layout := range layouts {
		for _, batch := range []int{64, 512} {
			b.Run(fmt.Sprintf("entries=%d/jobs=%d", layout.entries, batch), func(b *testing.B) {
				db := openRaw(b, false)
				defer db.Close()
				var n uint64
				b.ReportAllocs()
				for b.Loop() {
					txn := db.NewTransaction(true)
					for range batch {
						n++
						for _, e := range layout.kvs {
							key := make([]byte, 17)
							key[0] = e.prefix
							binary.BigEndian.PutUint64(key[9:], n)
							if err := txn.Set(key, e.val); err != nil {
								b.Fatal(err)
							}
						}
					}
					if err := txn.Commit(); err != nil {
						b.Fatal(err)
					}
					if err := db.Sync(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "jobs/s")
			})
		}
	}
}

// BenchmarkRawConcurrentCommit is raw Badger's own group commit at the
// engine's concurrency: producers goroutines each write one job (edgeq's 2
// entries: the record with its 256-byte payload inside, and the ready
// entry) in its own transaction and wait until it is durable
// (SyncWrites: Badger's write goroutine batches the commits that arrive
// while it writes and syncs, one fsync for the batch). It is the baseline
// for the engine's DurableEnqueue with the same number of producers:
// durable single-job enqueues, no engine.
//
//	go test -run x -bench RawConcurrentCommit -benchtime 100000x -count 3 ./storage/
func BenchmarkRawConcurrentCommit(b *testing.B) {
	for _, producers := range []int{1, 64} {
		b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) {
			db := openRaw(b, true)
			defer db.Close()
			rec := bytes.Repeat([]byte{'r'}, 80+2+1+4+256)
			idx := bytes.Repeat([]byte{'i'}, 16)
			var n atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			per := b.N / producers
			for p := range producers {
				jobs := per
				if p == 0 {
					jobs += b.N % producers
				}
				wg.Go(func() {
					for range jobs {
						id := n.Add(1)
						err := db.Update(func(txn *badger.Txn) error {
							for _, kv := range []struct {
								prefix byte
								val    []byte
							}{{prefixMeta, rec}, {prefixReady, idx}} {
								key := make([]byte, 17)
								key[0] = kv.prefix
								binary.BigEndian.PutUint64(key[9:], id)
								if err := txn.Set(key, kv.val); err != nil {
									return err
								}
							}
							return nil
						})
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}

// BenchmarkCountsBacklog is what recovery's Counts costs on a backlog of
// 100,000 jobs (EDGEQ_BACKLOG_JOBS sets the number; the payloads of
// backlogPayload, most inline): the index counts alone, which read no
// record, against the whole of Counts, whose payload bytes (max_bytes)
// take one more pass over the records. Their ratio is what the bytes add.
//
//	go test -run x -bench CountsBacklog -count 3 ./storage/
func BenchmarkCountsBacklog(b *testing.B) {
	n := 100_000
	if s := os.Getenv("EDGEQ_BACKLOG_JOBS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			b.Fatalf("EDGEQ_BACKLOG_JOBS=%q: want a positive integer", s)
		}
		n = v
	}
	s, err := Open(Config{Dir: b.TempDir(), Logger: testLoggerB(b)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	tx := s.Begin()
	for id := 1; id <= n; id++ {
		j := backlogJob(id)
		if !tx.Fits(store.Op{Change: j}) {
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
			tx = s.Begin()
		}
		if err := tx.Create(j); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	noop := func([]byte) *store.Counts { return new(store.Counts) }
	b.Run("indexes", func(b *testing.B) {
		for b.Loop() {
			if err := s.View(func(r store.ReadTx) error { return r.(reader).countIndexes(noop) }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("indexes+bytes", func(b *testing.B) {
		for b.Loop() {
			if err := s.View(func(r store.ReadTx) error { _, err := r.Counts(func(string) bool { return true }); return err }); err != nil {
				b.Fatal(err)
			}
		}
	})
}
