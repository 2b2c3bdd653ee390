package resource

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testConfig() Config {
	return Config{MinConcurrency: 1, MaxConcurrency: 8}.withDefaults()
}

// healthy is a busy but unharmed 4-core host with 1000 MiB of memory limit.
func healthy() Sample {
	return Sample{
		Known: SignalCPU | SignalLoad | SignalMemory | SignalDisk |
			SignalPSICPU | SignalPSIMemory | SignalPSIIO,
		CPUBusy:  50,
		Cores:    4,
		Load1:    2,
		MemUsed:  500 * MiB,
		MemLimit: 1000 * MiB,
		DiskFree: 10 << 30,
		Usage:    Usage{Running: 8, Limit: 8, CommitP99: 20 * time.Millisecond, WaitP99: 100 * time.Millisecond},
	}
}

func withMem(s Sample, pct float64) Sample {
	s.MemUsed = uint64(pct * 10 * MiB)
	return s
}

// sim feeds samples to decide one interval apart and records the decisions.
type sim struct {
	cfg     Config
	st      state
	at      time.Time
	last    Decision
	changes []Decision
}

func newSim(cfg Config) *sim {
	return &sim{cfg: cfg, st: newState(cfg, t0), at: t0}
}

func (m *sim) step(s Sample) Decision {
	s.At = m.at
	d, st := decide(s, m.st, m.cfg)
	m.st, m.last = st, d
	if d.Changed {
		m.changes = append(m.changes, d)
	}
	m.at = m.at.Add(m.cfg.Interval)
	return d
}

// run feeds n samples from gen (given the sample index).
func (m *sim) run(n int, gen func(i int) Sample) {
	for i := range n {
		m.step(gen(i))
	}
}

func TestAssess(t *testing.T) {
	cfg := testConfig()
	slowCommit := func(s Sample) Sample { s.CommitP99 = time.Second; return s }
	tests := []struct {
		name string
		s    func() Sample
		want job.Level
		why  string // substring of the reason
	}{
		{"healthy", healthy, job.LevelNormal, ""},
		{"cpu 100% alone", func() Sample { s := healthy(); s.CPUBusy = 100; s.Load1 = 7.9; return s }, job.LevelNormal, ""},
		{"cpu 100% with cpu stall", func() Sample { s := healthy(); s.CPUBusy = 100; s.PSICPU.Some10 = 60; return s }, job.LevelElevated, "cpu stall"},
		{"cpu stall without busy cpu", func() Sample { s := healthy(); s.PSICPU.Some10 = 60; return s }, job.LevelNormal, ""},
		{"cpu 100% with slow commits", func() Sample { s := slowCommit(healthy()); s.CPUBusy = 100; return s }, job.LevelElevated, "commit p99 1s"},
		{"cpu stall with slow commits", func() Sample {
			s := slowCommit(healthy())
			s.CPUBusy, s.PSICPU.Some10 = 100, 60
			return s
		}, job.LevelHigh, "cpu stall"},
		{"run queue far above cores alone", func() Sample { s := healthy(); s.Load1 = 12; return s }, job.LevelNormal, ""},
		{"run queue far above cores with slow waits", func() Sample {
			s := healthy()
			s.Load1, s.WaitP99 = 12, 20*time.Second
			s.Known &^= SignalCPU
			return s
		}, job.LevelElevated, "load 12.0 on 4 cores"},
		{"slow commits alone", func() Sample { return slowCommit(healthy()) }, job.LevelNormal, ""},
		{"memory at enter", func() Sample { return withMem(healthy(), 86) }, job.LevelElevated, "memory 86.0%"},
		{"memory past the midpoint", func() Sample { return withMem(healthy(), 93) }, job.LevelHigh, "memory 93.0%"},
		{"memory with slow commits", func() Sample { return slowCommit(withMem(healthy(), 86)) }, job.LevelHigh, "commit p99"},
		{"memory headroom exhausted", func() Sample { return withMem(healthy(), 97.5) }, job.LevelCritical, "headroom"},
		{"memory unknown", func() Sample { s := withMem(healthy(), 99); s.Known &^= SignalMemory; return s }, job.LevelNormal, ""},
		{"memory stall", func() Sample { s := healthy(); s.PSIMemory.Some10 = 12; return s }, job.LevelElevated, "memory stall psi some 12.0%"},
		{"memory thrashing", func() Sample { s := healthy(); s.PSIMemory = Pressure{40, 12}; return s }, job.LevelHigh, "memory stall psi full"},
		{"major faults without psi", func() Sample {
			s := healthy()
			s.Known = s.Known&^SignalPSIMemory | SignalMajorFaults
			s.MajorFaults = 150
			return s
		}, job.LevelElevated, "major faults 150/s"},
		{"major faults ignored when psi says calm", func() Sample {
			s := healthy()
			s.Known |= SignalMajorFaults
			s.MajorFaults = 150
			return s
		}, job.LevelNormal, ""},
		{"io stall", func() Sample { s := healthy(); s.PSIIO.Full10 = 35; return s }, job.LevelElevated, "io stall"},
		{"io stall with slow waits", func() Sample { s := healthy(); s.PSIIO.Full10 = 35; s.WaitP99 = time.Minute; return s }, job.LevelHigh, "wait p99 1m0s"},
		{"disk low", func() Sample { s := healthy(); s.DiskFree = 400 * MiB; return s }, job.LevelElevated, "disk free 400.0MiB"},
		{"disk below minimum", func() Sample { s := healthy(); s.DiskFree = 200 * MiB; return s }, job.LevelCritical, "below disk_min_free"},
		{"go memory high", func() Sample {
			s := healthy()
			s.Known |= SignalGoMemory
			s.GoMem, s.GoMemLimit = 85, 100
			return s
		}, job.LevelElevated, "go memory"},
		{"go memory near GOMEMLIMIT", func() Sample {
			s := healthy()
			s.Known |= SignalGoMemory
			s.GoMem, s.GoMemLimit = 92, 100
			return s
		}, job.LevelCritical, "GOMEMLIMIT"},
		{"go memory near GOMEMLIMIT in edgeq's own buffers", func() Sample {
			s := healthy()
			s.Known |= SignalGoMemory
			s.GoMem, s.GoMemLimit, s.Transient = 92, 100, 30
			return s
		}, job.LevelNormal, ""},
		{"go memory near GOMEMLIMIT beyond edgeq's own buffers", func() Sample {
			s := healthy()
			s.Known |= SignalGoMemory
			s.GoMem, s.GoMemLimit, s.Transient = 99, 100, 5
			return s
		}, job.LevelCritical, "GOMEMLIMIT: 94.0%"},
		{"hot", func() Sample { s := healthy(); s.Known |= SignalThermal; s.TempC = 82; return s }, job.LevelElevated, "temperature 82.0C"},
		{"nothing known", func() Sample { return Sample{} }, job.LevelNormal, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.s()
			got, why := assess(s, cfg, false)
			if got != tt.want {
				t.Fatalf("level = %s (%s), want %s", got, formatReason(why, s), tt.want)
			}
			if reason := formatReason(why, s); !strings.Contains(reason, tt.why) {
				t.Fatalf("reason = %q, want it to contain %q", reason, tt.why)
			}
			// The exit thresholds are looser: hold is never below enter.
			if hold, _ := assess(s, cfg, true); hold < got {
				t.Fatalf("hold level %s below enter level %s", hold, got)
			}
		})
	}
}

// A recorded "normal peak": 30 minutes of 1 Hz samples at 95-100% CPU, a
// run queue of twice the cores, every worker busy, no stalls, healthy
// memory and fast commits.
func TestNormalPeakNeverSheds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	m := newSim(testConfig())
	m.run(30*60, func(int) Sample {
		s := withMem(healthy(), 55+10*rng.Float64())
		s.CPUBusy = 95 + 5*rng.Float64()
		s.Load1 = 6 + 3*rng.Float64()
		s.PSICPU.Some10 = 20 * rng.Float64()
		s.PSIIO = Pressure{10 * rng.Float64(), 5 * rng.Float64()}
		s.CommitP99 = time.Duration(20+rng.IntN(80)) * time.Millisecond
		s.Running, s.Limit = 8, 8
		return s
	})
	if len(m.changes) != 0 {
		t.Fatalf("%d level changes at a healthy peak, first: %+v", len(m.changes), m.changes[0])
	}
	if m.last.Concurrency != 8 || m.last.ReservedCritical != 1 {
		t.Fatalf("concurrency = %d (reserved %d), want 8 (1)", m.last.Concurrency, m.last.ReservedCritical)
	}
}

// Input flapping around a threshold every 3 s for 30 minutes enters the
// level at most once and never leaves it while the flapping goes on.
func TestFlappingInputHoldsLevel(t *testing.T) {
	cfg := testConfig()
	tests := []struct {
		name     string
		low, hi  func() Sample
		wantHigh job.Level // level reached, and held
		entries  int       // level changes allowed: the initial entry, in one or two steps up
	}{
		{"memory around enter", func() Sample { return withMem(healthy(), 84) }, func() Sample { return withMem(healthy(), 86) }, job.LevelElevated, 1},
		{"memory across enter and exit", func() Sample { return withMem(healthy(), 70) }, func() Sample { return withMem(healthy(), 90) }, job.LevelElevated, 1},
		{"memory around the high midpoint", func() Sample { return withMem(healthy(), 91) }, func() Sample { return withMem(healthy(), 94) }, job.LevelHigh, 2},
		{"memory stall", func() Sample { s := healthy(); s.PSIMemory.Some10 = 2; return s }, func() Sample { s := healthy(); s.PSIMemory.Some10 = 12; return s }, job.LevelElevated, 1},
		{"commit latency at full cpu", func() Sample {
			s := healthy()
			s.CPUBusy, s.CommitP99 = 100, 300*time.Millisecond
			return s
		}, func() Sample {
			s := healthy()
			s.CPUBusy, s.CommitP99 = 100, 700*time.Millisecond
			return s
		}, job.LevelElevated, 1},
		{"disk around the minimum", func() Sample { s := healthy(); s.DiskFree = 340 * MiB; return s }, func() Sample { s := healthy(); s.DiskFree = 250 * MiB; return s }, job.LevelCritical, 2},
		{"cpu around enter without symptom", func() Sample { s := healthy(); s.CPUBusy = 70; return s }, func() Sample { s := healthy(); s.CPUBusy = 100; return s }, job.LevelNormal, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newSim(cfg)
			m.run(30*60, func(i int) Sample {
				if (i/3)%2 == 1 {
					return tt.hi()
				}
				return tt.low()
			})
			if len(m.changes) != tt.entries {
				t.Fatalf("%d level changes, want %d: %+v", len(m.changes), tt.entries, m.changes)
			}
			for i := 1; i < len(m.changes); i++ {
				if m.changes[i].Level < m.changes[i-1].Level {
					t.Fatalf("level went down while the input flapped: %+v", m.changes)
				}
			}
			if m.last.Level != tt.wantHigh {
				t.Fatalf("level = %s, want %s", m.last.Level, tt.wantHigh)
			}
		})
	}
}

// Memory pressure rising reaches high within an interval plus a dwell; the
// recovery steps down one level at a time, each after the exit dwell.
func TestMemoryRisingAndRecovery(t *testing.T) {
	cfg := testConfig()
	m := newSim(cfg)
	mem := func(i int) float64 { // 70% rising 1 point a second to 95%
		return min(70+float64(i), 95)
	}
	var elevatedAt, highAt time.Time
	for i := range 60 {
		d := m.step(withMem(healthy(), mem(i)))
		if d.Level == job.LevelElevated && elevatedAt.IsZero() {
			elevatedAt = d.At
		}
		if d.Level == job.LevelHigh && highAt.IsZero() {
			highAt = d.At
		}
	}
	crossed := t0.Add(15 * time.Second) // 85% at i = 15
	if !elevatedAt.Equal(crossed) {
		t.Errorf("elevated at +%s, want at +%s (the sample that crossed enter)", elevatedAt.Sub(t0), crossed.Sub(t0))
	}
	if highAt.IsZero() || highAt.Sub(crossed) > cfg.Interval+cfg.Dwell {
		t.Fatalf("high at +%s, want within interval+dwell of +%s", highAt.Sub(t0), crossed.Sub(t0))
	}
	if m.last.Level != job.LevelHigh {
		t.Fatalf("level at 95%% memory = %s, want high", m.last.Level)
	}

	// Memory falls back to 50%: high → elevated → normal, one dwell each.
	calm := m.at
	for range 60 {
		m.step(withMem(healthy(), 50))
	}
	got := m.changes[len(m.changes)-2:]
	if got[0].Level != job.LevelElevated || got[0].At.Sub(calm) != cfg.Dwell {
		t.Errorf("first step down = %s at +%s, want elevated at +%s", got[0].Level, got[0].At.Sub(calm), cfg.Dwell)
	}
	if got[1].Level != job.LevelNormal || got[1].At.Sub(calm) != 2*cfg.Dwell {
		t.Errorf("second step down = %s at +%s, want normal at +%s", got[1].Level, got[1].At.Sub(calm), 2*cfg.Dwell)
	}
	if len(m.changes) != 4 {
		t.Errorf("%d level changes, want 4 (up twice, down twice): %+v", len(m.changes), m.changes)
	}
}

// A level is held for at least the dwell even when pressure vanishes at once.
func TestMinimumDwell(t *testing.T) {
	cfg := testConfig()
	m := newSim(cfg)
	m.step(withMem(healthy(), 90))
	// Calm from the next sample on: the step down comes a dwell later.
	for i := 1; i <= 15; i++ {
		if d := m.step(withMem(healthy(), 10)); d.Level != job.LevelElevated {
			t.Fatalf("left elevated after %ds, before the dwell", i)
		}
	}
	if d := m.step(withMem(healthy(), 10)); d.Level != job.LevelNormal || !strings.HasPrefix(d.Reason, "eased for") {
		t.Fatalf("after the dwell: %s %q, want normal, eased", d.Level, d.Reason)
	}
}

func TestInterlocksActAtOnce(t *testing.T) {
	cfg := testConfig()
	tests := []struct {
		name string
		s    func() Sample
	}{
		{"disk below minimum", func() Sample { s := healthy(); s.DiskFree = 100 * MiB; return s }},
		{"go memory near GOMEMLIMIT", func() Sample {
			s := healthy()
			s.Known |= SignalGoMemory
			s.GoMem, s.GoMemLimit = 950, 1000
			return s
		}},
		{"memory exhausted", func() Sample { return withMem(healthy(), 99) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newSim(cfg)
			m.step(healthy())
			d := m.step(tt.s())
			if d.Level != job.LevelCritical || !d.Changed {
				t.Fatalf("level = %s (changed %v), want critical in the same sample", d.Level, d.Changed)
			}
			// Recovery: one step per dwell, from critical to normal.
			for range 3*15 + 1 {
				m.step(healthy())
			}
			var levels []job.Level
			for _, c := range m.changes {
				levels = append(levels, c.Level)
			}
			want := []job.Level{job.LevelCritical, job.LevelHigh, job.LevelElevated, job.LevelNormal}
			if len(levels) != len(want) {
				t.Fatalf("levels = %v, want %v", levels, want)
			}
			for i := range want {
				if levels[i] != want[i] {
					t.Fatalf("levels = %v, want %v", levels, want)
				}
			}
		})
	}
}

func TestConcurrencyAIMD(t *testing.T) {
	cfg := testConfig()

	t.Run("grows while used and calm", func(t *testing.T) {
		m := newSim(cfg)
		m.st.Concurrency = 2
		var grew []time.Duration
		prev := 2
		for i := range 60 {
			s := healthy()
			s.Limit = prev
			s.Running = prev - reservedFor(prev) // every non-critical slot busy
			d := m.step(s)
			if d.Concurrency != prev {
				if d.Concurrency != prev+1 {
					t.Fatalf("step %d: %d → %d, want +1", i, prev, d.Concurrency)
				}
				grew = append(grew, d.At.Sub(t0))
				prev = d.Concurrency
			}
		}
		if prev != 8 {
			t.Fatalf("concurrency = %d after a minute, want max 8", prev)
		}
		for i := 1; i < len(grew); i++ {
			if gap := grew[i] - grew[i-1]; gap < aimdIncreaseEvery {
				t.Fatalf("grew twice within %s: %v", gap, grew)
			}
		}
	})

	t.Run("recovers by doubling when not used", func(t *testing.T) {
		m := newSim(cfg)
		m.st.Concurrency = 1
		var got []string
		prev := 1
		for range 60 {
			s := healthy()
			s.Running, s.Limit = 0, prev
			if d := m.step(s); d.Concurrency != prev {
				got = append(got, strconv.Itoa(d.Concurrency)+"@"+d.At.Sub(t0).String())
				prev = d.Concurrency
			}
		}
		if want := "2@0s 4@5s 8@10s"; strings.Join(got, " ") != want {
			t.Fatalf("idle recovery %v, want %s", got, want)
		}
	})

	t.Run("partly used recovers by doubling too", func(t *testing.T) {
		m := newSim(cfg)
		m.st.Concurrency = 3
		m.run(30, func(int) Sample { s := healthy(); s.Running, s.Limit = 1, 3; return s })
		if m.last.Concurrency != 8 {
			t.Fatalf("concurrency = %d, want 8", m.last.Concurrency)
		}
	})

	t.Run("does not grow under elevated", func(t *testing.T) {
		m := newSim(cfg)
		m.st.Concurrency = 3
		m.run(120, func(int) Sample { s := withMem(healthy(), 88); s.Running, s.Limit = 3, 3; return s })
		if m.last.Level != job.LevelElevated || m.last.Concurrency != 3 {
			t.Fatalf("level %s concurrency %d, want elevated 3", m.last.Level, m.last.Concurrency)
		}
	})

	t.Run("shrinks multiplicatively under pressure to min", func(t *testing.T) {
		m := newSim(cfg)
		var seen []int
		prev := 8
		for range 60 {
			d := m.step(withMem(healthy(), 94)) // high
			if d.Concurrency != prev {
				seen = append(seen, d.Concurrency)
				prev = d.Concurrency
			}
		}
		want := []int{6, 4, 3, 2, 1}
		if len(seen) != len(want) {
			t.Fatalf("cuts = %v, want %v", seen, want)
		}
		for i := range want {
			if seen[i] != want[i] {
				t.Fatalf("cuts = %v, want %v", seen, want)
			}
		}
		if m.last.ReservedCritical != 0 {
			t.Fatalf("reserved = %d at concurrency 1, want 0", m.last.ReservedCritical)
		}
	})

	t.Run("elevated with a symptom shrinks", func(t *testing.T) {
		m := newSim(cfg)
		m.run(6, func(int) Sample { s := healthy(); s.CPUBusy, s.CommitP99 = 100, time.Second; return s })
		if m.last.Level != job.LevelElevated || m.last.Concurrency >= 8 {
			t.Fatalf("level %s concurrency %d, want elevated below 8", m.last.Level, m.last.Concurrency)
		}
	})

	t.Run("stays within min and max", func(t *testing.T) {
		cfg := Config{MinConcurrency: 2, MaxConcurrency: 5}.withDefaults()
		rng := rand.New(rand.NewPCG(3, 4))
		m := newSim(cfg)
		for i := range 20000 {
			s := withMem(healthy(), 60+38*rng.Float64())
			s.CommitP99 = time.Duration(rng.IntN(1000)) * time.Millisecond
			s.Limit = m.last.Concurrency
			s.Running = rng.IntN(s.Limit + 1)
			d := m.step(s)
			if d.Concurrency < 2 || d.Concurrency > 5 {
				t.Fatalf("sample %d: concurrency %d outside [2,5]", i, d.Concurrency)
			}
			if d.ReservedCritical != 1 {
				t.Fatalf("reserved = %d at concurrency %d", d.ReservedCritical, d.Concurrency)
			}
		}
	})
}

func TestDecideDrill(t *testing.T) {
	cfg := testConfig()
	m := newSim(cfg)
	m.step(healthy())
	m.st = startDrill(m.st, job.LevelHigh, m.at.Add(60*time.Second))
	start := m.at
	for range 60 {
		d := m.step(healthy())
		if d.Level != job.LevelHigh || !d.Drill || !strings.HasPrefix(d.Reason, "drill until") {
			t.Fatalf("during the drill: %s drill=%v %q", d.Level, d.Drill, d.Reason)
		}
	}
	if m.last.Concurrency >= 8 {
		t.Fatalf("concurrency %d did not follow the drilled level", m.last.Concurrency)
	}
	// The drill ends at 1m: the host's own level (normal) holds at once.
	for range 40 {
		m.step(healthy())
	}
	var got []string
	for _, c := range m.changes {
		got = append(got, c.Level.String()+"@"+c.At.Sub(start).String())
	}
	want := "high@0s normal@1m0s"
	if strings.Join(got, " ") != want {
		t.Fatalf("after the drill: %v, want %s", got, want)
	}
	if last := m.changes[len(m.changes)-1]; last.Drill || !strings.HasPrefix(last.Reason, "drill ended") {
		t.Fatalf("change at the drill's end: drill=%v %q, want not a drill, \"drill ended...\"", last.Drill, last.Reason)
	}

	t.Run("interlock wins over a drill", func(t *testing.T) {
		m := newSim(cfg)
		m.st = startDrill(m.st, job.LevelNormal, m.at.Add(time.Minute))
		s := healthy()
		s.DiskFree = 10 * MiB
		if d := m.step(s); d.Level != job.LevelCritical || d.Drill {
			t.Fatalf("level %s drill %v, want critical from the interlock", d.Level, d.Drill)
		}
		if d := m.step(healthy()); d.Level != job.LevelNormal || !d.Drill {
			t.Fatalf("level %s drill %v after the interlock cleared, want the drill's normal", d.Level, d.Drill)
		}
	})

	t.Run("ended drill", func(t *testing.T) {
		m := newSim(cfg)
		m.st = startDrill(m.st, job.LevelCritical, m.at.Add(time.Hour))
		m.step(healthy())
		m.st = endDrill(m.st)
		d := m.step(healthy())
		if d.Level != job.LevelNormal || d.Drill || !d.Changed {
			t.Fatalf("right after the drill: %s drill=%v changed=%v, want normal at once, not drill", d.Level, d.Drill, d.Changed)
		}
		if !m.st.DrillUntil.IsZero() {
			t.Fatal("drill still set")
		}
	})
}

// A drill ends at the level the host's own signals hold, the level the
// governor would have had without it: never held up by exit thresholds
// that no enter threshold justified, and never below real pressure.
func TestDrillEndsAtTheHostLevel(t *testing.T) {
	cfg := testConfig()
	busy := func(int) Sample { return withMem(healthy(), 80) } // between memory exit (75) and enter (85)
	tests := []struct {
		name  string
		drill job.Level
		host  func(i int) Sample // sample i of the drill's 60
		want  job.Level          // right after the drill
		then  []string           // the level changes after it, with a 40s tail of busy()
	}{
		{"busy host: exit thresholds hold nothing", job.LevelHigh, busy, job.LevelNormal, nil},
		{"critical drill on a busy host", job.LevelCritical, busy, job.LevelNormal, nil},
		{"real pressure that came and went during the drill", job.LevelHigh, func(i int) Sample {
			if i >= 10 && i < 20 {
				return withMem(healthy(), 90)
			}
			return withMem(healthy(), 50)
		}, job.LevelNormal, nil},
		{"real pressure at the drill's end", job.LevelHigh, func(i int) Sample {
			if i >= 50 {
				return withMem(healthy(), 88)
			}
			return healthy()
		}, job.LevelElevated, []string{"normal@+16s"}}, // calm from +1s, then a dwell
		{"drill below real pressure", job.LevelElevated, func(int) Sample { return withMem(healthy(), 94) }, job.LevelHigh,
			[]string{"elevated@+15s", "normal@+30s"}}, // calm from +0s, one dwell per step
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, cleared := range []bool{false, true} {
				m := newSim(cfg)
				m.step(healthy())
				until := m.at.Add(60 * time.Second)
				if cleared {
					until = m.at.Add(time.Hour)
				}
				m.st = startDrill(m.st, tt.drill, until)
				for i := range 60 {
					if d := m.step(tt.host(i)); !d.Drill {
						t.Fatalf("sample %d of the drill: %s drill=%v", i, d.Level, d.Drill)
					}
				}
				if cleared {
					m.st = endDrill(m.st)
				}
				end := m.at
				d := m.step(busy(0))
				if tt.want != job.LevelElevated {
					d = m.step(healthy())
				}
				if d.Level != tt.want || d.Drill {
					t.Fatalf("cleared=%v: right after the drill %s (drill=%v, %q), want %s", cleared, d.Level, d.Drill, d.Reason, tt.want)
				}
				n := len(m.changes)
				for range 40 {
					m.step(withMem(healthy(), 50))
				}
				var got []string
				for _, c := range m.changes[n:] {
					got = append(got, c.Level.String()+"@+"+c.At.Sub(end).String())
				}
				if strings.Join(got, " ") != strings.Join(tt.then, " ") {
					t.Fatalf("cleared=%v: changes after the drill %v, want %v", cleared, got, tt.then)
				}
			}
		})
	}
}

// After pressure ends, drilled or real, the worker limit is back at max
// within the documented bound: idle, ⌈log2(max/min)⌉ × 5s once the level is
// normal again; in full use, (max − min) × 5s.
func TestConcurrencyRecoversAfterPressure(t *testing.T) {
	cfg := testConfig()
	drill := func(m *sim) {
		m.st = startDrill(m.st, job.LevelCritical, m.at.Add(time.Minute))
	}
	real := func(m *sim) {}
	tests := []struct {
		name     string
		start    func(*sim)
		pressure func() Sample // for a minute
		used     bool
		within   time.Duration // of the level's return to normal
	}{
		{"drill, idle", drill, healthy, false, 3 * aimdIncreaseEvery},
		{"drill, in use", drill, healthy, true, 7 * aimdIncreaseEvery},
		{"real, idle", real, func() Sample { return withMem(healthy(), 94) }, false, 3 * aimdIncreaseEvery},
		{"real, in use", real, func() Sample { return withMem(healthy(), 94) }, true, 7 * aimdIncreaseEvery},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newSim(cfg)
			load := func(s Sample) Sample {
				s.Limit, s.Running = m.last.Concurrency, 0
				if tt.used {
					s.Running = max(1, s.Limit-reservedFor(s.Limit))
				}
				return s
			}
			m.step(load(healthy()))
			tt.start(m)
			for range 60 {
				m.step(load(tt.pressure()))
			}
			if m.last.Concurrency != 1 {
				t.Fatalf("concurrency = %d after a minute of pressure, want min 1", m.last.Concurrency)
			}
			var normalAt time.Time
			for range 300 {
				d := m.step(load(withMem(healthy(), 50)))
				if d.Level == job.LevelNormal && normalAt.IsZero() {
					normalAt = d.At
				}
				if d.Concurrency == cfg.MaxConcurrency {
					if took := d.At.Sub(normalAt); normalAt.IsZero() || took > tt.within {
						t.Fatalf("limit back at max %s after the level was normal again, want within %s", took, tt.within)
					}
					return
				}
			}
			t.Fatalf("limit %d five minutes after the pressure, want max %d", m.last.Concurrency, cfg.MaxConcurrency)
		})
	}
}
