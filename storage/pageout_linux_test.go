package storage

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

// tableRSS sums the resident kB of this process's mappings of .sst files
// in dir (/proc/self/smaps), and counts the mappings.
func tableRSS(t *testing.T, dir string) (kb int64, n int) {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	defer f.Close()
	abs, _ := filepath.Abs(dir)
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && strings.HasSuffix(fields[5], ".sst") && filepath.Dir(fields[5]) == abs
			if in {
				n++
			}
			continue
		}
		if in && len(fields) >= 2 && fields[0] == "Rss:" {
			n, _ := strconv.ParseInt(fields[1], 10, 64)
			kb += n
		}
	}
	return kb, n
}

// TestTablePagerReleasesNewTables fills a raw Badger DB (no maintenance
// loop: nothing else pages out) with the production options until it has
// written two tables (Badger reclaims each after copying it into its
// mapping; reading its index at open faults some back), then runs the pager: the tables' resident pages go, the
// data stays readable, and a second run asks nothing of tables it has seen.
func TestTablePagerReleasesNewTables(t *testing.T) {
	skipUnderQEMU(t)
	dir := t.TempDir()
	db, err := badger.Open(badgerOptions(Config{Dir: dir, Memory: ProfileSmall}, testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	val := bytes.Repeat([]byte{'p'}, 400)
	// Two tables' worth: below the level-0 compaction trigger (three), so
	// the set of tables holds still while the test watches.
	const n = 25_000
	key := func(i int) []byte { return binary.BigEndian.AppendUint64([]byte{prefixMeta}, uint64(i)) }
	for i := 0; i < n; i += 1000 {
		err := db.Update(func(txn *badger.Txn) error {
			for k := i; k < i+1000; k++ {
				if err := txn.Set(key(k), val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	waitTables(t, dir, func(kb int64, n int) bool { return n >= 2 && kb >= 1024 })
	time.Sleep(time.Second) // the flushes are done
	before, tables := tableRSS(t, dir)
	p := newTablePager(dir)
	// The first run only notes the tables (their files might still be
	// written); the next, a tick later, pages out those that did not
	// change meanwhile.
	if first, err := p.run(); err != nil || first != 0 {
		t.Fatalf("first run asked %d bytes (err %v), want 0: a table is paged out once it stopped changing", first, err)
	}
	time.Sleep(checkpointEvery)
	reclaimed, err := p.run()
	if err != nil {
		t.Fatal(err)
	}
	if p.off {
		t.Skip("kernel refuses MADV_PAGEOUT (before Linux 5.4)")
	}
	after, _ := tableRSS(t, dir)
	t.Logf("%d tables: resident %d kB before, %d kB after (asked %d kB)", tables, before, after, reclaimed>>10)
	if after > before/4 {
		t.Errorf("tables resident %d kB after the pager, was %d kB: want most released", after, before)
	}
	// A further run never asks again for a table it paged out (a
	// compaction may have written new ones meanwhile: those it may page).
	seen := maps.Clone(p.seen)
	unpaged := int64(0)
	for _, m := range currentTableMappings(t, dir) {
		if e, ok := seen[m.key]; !ok || !e.paged {
			unpaged += int64(m.end - m.start)
		}
	}
	if again, err := p.run(); err != nil || again > unpaged {
		t.Errorf("third run asked %d bytes (err %v), want at most the %d bytes of tables not paged out before", again, err, unpaged)
	}
	err = db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key(n / 2))
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if !bytes.Equal(v, val) {
				t.Errorf("value after the pager differs")
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestStorePagesOutItsTables: the store's maintenance loop runs the pager,
// so a filled store's new tables do not stay resident.
func TestStorePagesOutItsTables(t *testing.T) {
	skipUnderQEMU(t)
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if newTablePager(dir).off {
		t.Skip("no pager")
	}
	payload := bytes.Repeat([]byte{'p'}, 300)
	// Two tables' worth: below the level-0 compaction trigger (three), so
	// no compaction reads pages back while the test watches.
	const n = 25_000
	tx := s.Begin()
	for i := 1; i <= n; i++ {
		if !fitsJob(tx, payload) {
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			tx = s.Begin()
		}
		j := &job.Job{ID: job.ID(i), Queue: "q", State: job.StateReady, ReadySeq: uint64(i), MaxAttempts: 1, Payload: payload}
		if err := tx.Create(j); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// Badger has written tables of about 8 MB; within a few ticks of the
	// maintenance loop most of them is no longer resident.
	var total int64
	kb, tables := waitTables(t, dir, func(kb int64, n int) bool {
		total = tableBytes(t, dir) >> 10
		return n >= 2 && kb < total/3
	})
	t.Logf("%d tables of %d kB: %d kB resident", tables, total, kb)
	if tables < 2 || kb >= total/3 {
		t.Fatalf("%d tables of %d kB still %d kB resident after waiting for the maintenance loop", tables, total, kb)
	}
	if err := s.View(func(r store.ReadTx) error {
		j, err := r.Job(job.ID(n/2), true)
		if err != nil {
			return err
		}
		if !bytes.Equal(j.Payload, payload) {
			t.Errorf("payload after the pager differs")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// waitTables polls the table mappings of dir for up to 30 s until ok holds,
// and returns the last reading. (Compactions read tables and so fault some
// pages back until they are done; on a loaded machine that takes a while.)
func waitTables(t *testing.T, dir string, ok func(kb int64, n int) bool) (kb int64, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		kb, n = tableRSS(t, dir)
		if ok(kb, n) || time.Now().After(deadline) {
			return kb, n
		}
	}
}

// currentTableMappings lists this process's mappings of .sst files in dir.
func currentTableMappings(t *testing.T, dir string) []tableMapping {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skipf("no /proc/self/maps: %v", err)
	}
	abs, _ := filepath.Abs(dir)
	return tableMappings(b, abs)
}

// skipUnderQEMU skips a test of page residency under qemu-user (make
// test-arm sets EDGEQ_QEMU): it accepts madvise(MADV_PAGEOUT) and does
// nothing. make test runs these tests natively.
func skipUnderQEMU(t *testing.T) {
	t.Helper()
	if os.Getenv("EDGEQ_QEMU") != "" {
		t.Skip("qemu-user accepts MADV_PAGEOUT without carrying it out; make test runs this natively")
	}
}
