package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A run line as bench-pi.sh writes it, with its CFS counters.
const runLine = `{"system":"edgeq","workload":"single","jobs":1000,"seconds":1,"jobs_per_s":1000,"round":1,` +
	`"cpu_us":90000,"cg_wbytes":4096,"cg_wios":10,"dev_wbytes":8192,"dev_wios":12,"cg_peak":1048576,` +
	`"cpu_periods":%PERIODS%,"cpu_throttled":5,"throttled_us":200000,"syncs":4,"sync_s":0.02,"sync_ops":100,"vmhwm":1048576,"governor":""}`

func writeRuns(t *testing.T, periods string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "results.jsonl")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(runLine, "%PERIODS%", periods)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckRunsWantsCFSPeriods(t *testing.T) {
	if err := checkRuns(writeRuns(t, "10")); err != nil {
		t.Fatalf("a run with its CFS periods counted: %v", err)
	}
	err := checkRuns(writeRuns(t, "0"))
	if err == nil || !strings.Contains(err.Error(), "no CFS period counted") {
		t.Fatalf("a run without CFS periods: got %v, want it refused", err)
	}
}

func TestThrottled(t *testing.T) {
	runs, err := readRuns(writeRuns(t, "10"))
	if err != nil {
		t.Fatal(err)
	}
	if got := throttledShare(runs[0]); got != 50 {
		t.Errorf("throttledShare: got %v%%, want 50%% (5 of 10 periods)", got)
	}
	if got := throttledPerSecond(runs[0]); got != 200 {
		t.Errorf("throttledPerSecond: got %v ms/s, want 200 (200 ms in 1 s of periods)", got)
	}
}

func TestSyncCell(t *testing.T) {
	runs, err := readRuns(writeRuns(t, "10"))
	if err != nil {
		t.Fatal(err)
	}
	if got := syncCell(runs, opsPerSync, "%.1f"); got != "25.0" {
		t.Errorf("ops a fsync: got %s, want 25.0 (100 ops in 4)", got)
	}
	if got := syncCell(runs, msPerSync, "%.2f"); got != "5.00" {
		t.Errorf("ms a fsync: got %s, want 5.00 (20 ms in 4)", got)
	}
	runs[0].Syncs = 0
	if got := syncCell(runs, opsPerSync, "%.1f"); got != "—" {
		t.Errorf("a peer: got %s, want —", got)
	}
}
