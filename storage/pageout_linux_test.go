package storage

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// tableRSS sums the resident kB of this process's mappings of .sst files
// in dir (/proc/self/smaps), and counts the mappings.
func tableRSS(t *testing.T, dir string) (kb int64, maps int) {
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
				maps++
			}
			continue
		}
		if in && len(fields) >= 2 && fields[0] == "Rss:" {
			n, _ := strconv.ParseInt(fields[1], 10, 64)
			kb += n
		}
	}
	return kb, maps
}

// TestTablePagerReleasesNewTables fills a store until Badger has written
// several tables (each starts fully resident: Badger copies it into its
// mapping), then runs the pager: the tables' resident pages go, the data
// stays readable, and a second run asks nothing of tables it has seen.
func TestTablePagerReleasesNewTables(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	payload := bytes.Repeat([]byte{'p'}, 300)
	const n = 60_000
	tx := s.Begin()
	for i := 1; i <= n; i++ {
		if !tx.Room(6, 256+len(payload)) {
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
	var before int64
	var maps int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if before, maps = tableRSS(t, dir); maps >= 3 {
			break
		}
	}
	if maps < 3 {
		t.Fatalf("%d table mappings after %d jobs, want several", maps, n)
	}
	p := newTablePager(dir)
	reclaimed, err := p.run()
	if err != nil {
		t.Fatal(err)
	}
	if p.off {
		t.Skip("kernel refuses MADV_PAGEOUT (before Linux 5.4)")
	}
	after, _ := tableRSS(t, dir)
	t.Logf("%d tables: resident %d kB before, %d kB after (asked %d kB)", maps, before, after, reclaimed>>10)
	if before < 1024 {
		t.Fatalf("tables resident %d kB before the pager: the test did not make any resident", before)
	}
	if after > before/4 {
		t.Errorf("tables resident %d kB after the pager, was %d kB: want most released", after, before)
	}
	if again, err := p.run(); err != nil || again != 0 {
		t.Errorf("second run asked %d bytes (err %v), want 0: tables already seen", again, err)
	}
	if err := s.View(func(r engine.ReadTx) error {
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
