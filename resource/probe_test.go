package resource

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v3/cpu"
)

func TestParsePSI(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Pressure
		wantErr bool
	}{
		{"some and full", "some avg10=1.53 avg60=0.87 avg300=0.21 total=1234\nfull avg10=0.50 avg60=0.10 avg300=0.00 total=99\n", Pressure{1.53, 0.5}, false},
		{"some only (old cpu)", "some avg10=42.00 avg60=1 avg300=0 total=1\n", Pressure{42, 0}, false},
		{"empty", "", Pressure{}, true},
		{"no avg10", "some avg60=1.00 total=1\n", Pressure{}, true},
		{"garbage number", "some avg10=x avg60=1 avg300=0 total=1\n", Pressure{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePSI([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parsePSI = %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseProcCgroup(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want procCgroup
	}{
		{"v2", "0::/system.slice/edgeq.service\n", procCgroup{v2: "/system.slice/edgeq.service", hasV2: true}},
		{"v1", "12:pids:/a\n10:memory:/system.slice/edgeq.service\n1:name=systemd:/a\n", procCgroup{v1Mem: "/system.slice/edgeq.service", hasV1M: true}},
		{"v1 joined controllers", "4:cpu,memory:/x\n", procCgroup{v1Mem: "/x", hasV1M: true}},
		{"hybrid", "4:memory:/m\n0::/u\n", procCgroup{v2: "/u", hasV2: true, v1Mem: "/m", hasV1M: true}},
		{"namespace root", "0::/\n", procCgroup{v2: "/", hasV2: true}},
		{"empty", "", procCgroup{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcCgroup([]byte(tt.in))
			if err != nil || got != tt.want {
				t.Fatalf("parseProcCgroup = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	if _, err := parseProcCgroup([]byte("garbage\n")); err == nil {
		t.Fatal("parseProcCgroup(garbage) = nil error")
	}
}

func TestParseLimitAndKeys(t *testing.T) {
	for in, want := range map[string]uint64{"max\n": unlimited, "268435456\n": 268435456, "9223372036854771712\n": unlimited} {
		if got, err := parseLimit([]byte(in)); err != nil || got != want {
			t.Errorf("parseLimit(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := parseLimit([]byte("lots")); err == nil {
		t.Error("parseLimit(lots) = nil error")
	}
	stat := []byte("anon 120\nanon_thp 7\nfile 5\n")
	if got, err := parseKeyValue(stat, "anon"); err != nil || got != 120 {
		t.Errorf("parseKeyValue(anon) = %d, %v", got, err)
	}
	if _, err := parseKeyValue(stat, "shmem"); err == nil {
		t.Error("parseKeyValue(shmem) found a missing key")
	}
	for in, want := range map[string]float64{"52078\n": 52.078, "-5000": -5} {
		if got, err := parseMilliCelsius([]byte(in)); err != nil || got != want {
			t.Errorf("parseMilliCelsius(%q) = %g, %v; want %g", in, got, err, want)
		}
	}
	for _, in := range []string{"-274000", "250000", "x"} {
		if _, err := parseMilliCelsius([]byte(in)); err == nil {
			t.Errorf("parseMilliCelsius(%q) = nil error", in)
		}
	}
}

func TestCPUBusy(t *testing.T) {
	a := cpu.TimesStat{User: 100, System: 50, Idle: 800, Iowait: 50}
	tests := []struct {
		name   string
		b      cpu.TimesStat
		want   float64
		wantOK bool
	}{
		{"half busy", cpu.TimesStat{User: 130, System: 70, Idle: 840, Iowait: 60}, 50, true},
		{"iowait is idle", cpu.TimesStat{User: 100, System: 50, Idle: 800, Iowait: 150}, 0, true},
		{"steal is busy", cpu.TimesStat{User: 100, System: 50, Idle: 800, Iowait: 50, Steal: 10}, 100, true},
		{"no time passed", a, 0, false},
		{"counters went back", cpu.TimesStat{User: 10, Idle: 900}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := cpuBusy(a, tt.b)
			if ok != tt.wantOK || math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("cpuBusy = %g, %v; want %g, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// The fixtures under testdata/ are host trees: proc/ and sys/ as a kernel
// shows them. The host has 4 CPUs and 1 GiB of RAM with 700 MiB available
// (31.6% used).
func TestLinuxSamplerFixtures(t *testing.T) {
	const hostUsed, hostTotal = (1048576 - 716800) * 1024, 1048576 * 1024
	base := SignalLoad | SignalMemory
	tests := []struct {
		root  string
		known Signals // GoMemory is left out: it depends on GOMEMLIMIT
		check func(t *testing.T, s Sample)
	}{
		{"psi-present", base | SignalPSICPU | SignalPSIMemory | SignalPSIIO, func(t *testing.T, s Sample) {
			wantMem(t, s, MemoryHost, hostUsed, hostTotal)
			wantPSI(t, "cpu", s.PSICPU, Pressure{12.5, 0})
			wantPSI(t, "memory", s.PSIMemory, Pressure{3.25, 1.1})
			wantPSI(t, "io", s.PSIIO, Pressure{20, 7.75})
		}},
		{"psi-absent", base | SignalThermal, func(t *testing.T, s Sample) {
			wantMem(t, s, MemoryHost, hostUsed, hostTotal)
			if s.TempC != 61.5 {
				t.Errorf("TempC = %g, want 61.5 (the hottest sane zone)", s.TempC)
			}
		}},
		{"no-memcg", base | SignalPSICPU | SignalPSIMemory | SignalPSIIO, func(t *testing.T, s Sample) {
			wantMem(t, s, MemoryHost, hostUsed, hostTotal)
			wantPSI(t, "cpu (cgroup above host)", s.PSICPU, Pressure{4, 2})
			wantPSI(t, "io", s.PSIIO, Pressure{0.5, 0.25})
		}},
		{"cgroup-v2", base | SignalPSICPU | SignalPSIMemory | SignalPSIIO, func(t *testing.T, s Sample) {
			// anon (not memory.current, which holds page cache) against the
			// slice's memory.high, tighter than the service's memory.max.
			wantMem(t, s, MemoryCgroupV2, 120000000, 240000000)
			wantPSI(t, "cpu", s.PSICPU, Pressure{30, 10})
			wantPSI(t, "memory", s.PSIMemory, Pressure{15.5, 6.25})
			wantPSI(t, "io", s.PSIIO, Pressure{3, 1})
		}},
		{"cgroup-v2-container", base, func(t *testing.T, s Sample) {
			wantMem(t, s, MemoryCgroupV2, 402653184, 536870912)
		}},
		{"cgroup-v1", base, func(t *testing.T, s Sample) {
			wantMem(t, s, MemoryCgroupV1, 209715200, 536870912)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.root, func(t *testing.T) {
			s := NewLinuxSampler("", filepath.Join("testdata", tt.root))
			got, err := s.Sample(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if k := got.Known &^ SignalGoMemory; k != tt.known {
				t.Errorf("Known = %s, want %s", k, tt.known)
			}
			if got.Cores != 4 || got.Load1 != 2.5 {
				t.Errorf("Cores, Load1 = %d, %g; want 4, 2.5", got.Cores, got.Load1)
			}
			tt.check(t, got)
		})
	}
}

func wantMem(t *testing.T, s Sample, src MemorySource, used, limit uint64) {
	t.Helper()
	if s.MemSource != src || s.MemUsed != used || s.MemLimit != limit {
		t.Errorf("memory = %s %d of %d, want %s %d of %d", s.MemSource, s.MemUsed, s.MemLimit, src, used, limit)
	}
}

func wantPSI(t *testing.T, name string, got, want Pressure) {
	t.Helper()
	if got != want {
		t.Errorf("PSI %s = %+v, want %+v", name, got, want)
	}
}

// copyTree copies a fixture to a temporary root that the test may change.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := os.CopyFS(dst, os.DirFS(src))
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLinuxSamplerDeltas(t *testing.T) {
	root := copyTree(t, "testdata/psi-absent")
	s := NewLinuxSampler(t.TempDir(), root)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return at }

	first, err := s.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if first.Known.Has(SignalCPU) || first.Known.Has(SignalMajorFaults) {
		t.Fatalf("first sample knows deltas: %s", first.Known)
	}
	if !first.Known.Has(SignalDisk) || first.DiskTotal == 0 {
		t.Fatalf("disk unknown on a real data dir: %s", first.Known)
	}

	// Two seconds later: 400 of 1000 new ticks busy over 4 CPUs, 300 more major faults.
	writeFile(t, filepath.Join(root, "proc/stat"), strings.Join([]string{
		"cpu  10300 200 3100 80500 600 0 100 50 0 0",
		"cpu0 2575 50 775 20125 150 0 25 12 0 0",
		"cpu1 2575 50 775 20125 150 0 25 13 0 0",
		"cpu2 2575 50 775 20125 150 0 25 12 0 0",
		"cpu3 2575 50 775 20125 150 0 25 13 0 0",
		"procs_running 3", ""}, "\n"))
	writeFile(t, filepath.Join(root, "proc/vmstat"), "pgfault 1\npgmajfault 4621\n")
	at = at.Add(2 * time.Second)
	second, err := s.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !second.Known.Has(SignalCPU) || math.Abs(second.CPUBusy-40) > 1e-9 {
		t.Errorf("CPUBusy = %g (known %v), want 40", second.CPUBusy, second.Known.Has(SignalCPU))
	}
	if !second.Known.Has(SignalMajorFaults) || second.MajorFaults != 150 {
		t.Errorf("MajorFaults = %g/s (known %v), want 150/s", second.MajorFaults, second.Known.Has(SignalMajorFaults))
	}

	// Files vanish (a kernel without them): the signals become unknown, not zero.
	for _, f := range []string{"proc/meminfo", "proc/vmstat", "sys/class/thermal/thermal_zone0/temp", "sys/class/thermal/thermal_zone1/temp"} {
		if err := os.Remove(filepath.Join(root, f)); err != nil {
			t.Fatal(err)
		}
	}
	third, err := s.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if third.Known.Has(SignalMemory) || third.Known.Has(SignalMajorFaults) || third.Known.Has(SignalThermal) {
		t.Errorf("Known = %s after removing meminfo, vmstat and thermal", third.Known)
	}
}

func TestLinuxSamplerNothingReadable(t *testing.T) {
	prev := debug.SetMemoryLimit(math.MaxInt64)
	defer debug.SetMemoryLimit(prev)
	s := NewLinuxSampler("", t.TempDir())
	got, err := s.Sample(context.Background())
	if err == nil {
		t.Fatalf("Sample on an empty root = %+v, nil error", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewLinuxSampler("", "testdata/psi-present").Sample(ctx); err == nil {
		t.Fatal("Sample with a done context = nil error")
	}
}

func TestLinuxSamplerGoMemory(t *testing.T) {
	prev := debug.SetMemoryLimit(1 << 30)
	defer debug.SetMemoryLimit(prev)
	got, err := NewLinuxSampler("", "testdata/psi-present").Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !got.Known.Has(SignalGoMemory) || got.GoMemLimit != 1<<30 || got.GoMem == 0 || got.GoMem >= 1<<30 {
		t.Fatalf("GoMem = %d of %d (known %v), want some of 1GiB", got.GoMem, got.GoMemLimit, got.Known.Has(SignalGoMemory))
	}

	s := NewLinuxSampler("", "testdata/psi-present")
	s.IgnoreGoMemory()
	if got, err = s.Sample(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got.Known.Has(SignalGoMemory) {
		t.Fatal("GoMemory known although ignored (a derived soft limit)")
	}

	debug.SetMemoryLimit(math.MaxInt64)
	got, err = NewLinuxSampler("", "testdata/psi-present").Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.Known.Has(SignalGoMemory) {
		t.Fatal("GoMemory known without GOMEMLIMIT")
	}
}

func TestSignalsString(t *testing.T) {
	if got := (SignalCPU | SignalDisk | SignalThermal).String(); got != "cpu,disk,thermal" {
		t.Fatalf("String = %q", got)
	}
}

func TestCgroupMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		root  string
		limit uint64
		ok    bool
	}{
		{"cgroup-v1", 536870912, true},           // memory.limit_in_bytes of the service, not the root's "unlimited"
		{"cgroup-v2", 240000000, true},           // the parent's memory.high is tighter than the service's memory.max
		{"cgroup-v2-container", 536870912, true}, // the namespace root's memory.max
		{"no-memcg", 0, false},
		{"psi-absent", 0, false}, // a host without a cgroup file
	} {
		t.Run(tc.root, func(t *testing.T) {
			limit, ok := CgroupMemoryLimit(filepath.Join("testdata", tc.root))
			if limit != tc.limit || ok != tc.ok {
				t.Errorf("CgroupMemoryLimit = %d, %v; want %d, %v", limit, ok, tc.limit, tc.ok)
			}
		})
	}
}
