package resource

import (
	"strconv"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// AIMD parameters of the worker limit (doc.go states the law).
const (
	aimdIncreaseEvery = 5 * time.Second // at most one +1 step per period
	aimdDecreaseEvery = 5 * time.Second // at most one cut per period: PSI avg10 and p99 windows lag
	aimdBeta          = 0.75            // a cut keeps this fraction (and removes at least one)
)

// Decision is what the governor concluded from one sample.
type Decision struct {
	At               time.Time
	Level            job.Level
	Since            time.Time // when Level was entered
	Changed          bool      // Level differs from the previous decision's
	Concurrency      int       // total worker limit, within [MinConcurrency, MaxConcurrency]
	ReservedCritical int       // of Concurrency, slots only critical queues may use: 1 when Concurrency > 1
	Reason           string    // the signals that justify Level, or the drill
	Drill            bool      // Level is forced by a drill
}

// state is what decide carries from one sample to the next.
type state struct {
	Level job.Level // in force: the host's, or the drill's
	Since time.Time // when Level was entered

	// Host is the level the host's own signals hold, tracked through
	// drills, so that a drill ends at the level the governor would have had
	// without it.
	Host hostLevel

	Concurrency int
	LastGrow    time.Time
	LastCut     time.Time

	Drill      job.Level
	DrillUntil time.Time // zero: no drill
	DrillEnded bool      // the next decision says the drill ended
}

// hostLevel is a level moved by the signals alone, with its hysteresis.
type hostLevel struct {
	Level     job.Level
	Since     time.Time // when Level was entered
	CalmSince time.Time // first sample at which Level was no longer justified; zero while it is
}

func newState(cfg Config, now time.Time) state {
	return state{Level: job.LevelNormal, Since: now, Host: hostLevel{Level: job.LevelNormal, Since: now},
		Concurrency: cfg.MaxConcurrency}
}

// startDrill forces lvl from the next decision until until.
func startDrill(st state, lvl job.Level, until time.Time) state {
	st.Drill, st.DrillUntil = lvl, until
	return st
}

// endDrill ends the drill: from the next decision the host's own level is
// in force again.
func endDrill(st state) state {
	st.DrillUntil = time.Time{}
	st.DrillEnded = true
	return st
}

// decide is the governor's whole policy, a pure function of the sample, the
// previous state and the configuration (with defaults applied). doc.go
// describes the levels, the hysteresis and the concurrency law.
func decide(s Sample, st state, cfg Config) (Decision, state) {
	now := s.At
	if st.Concurrency == 0 {
		st = newState(cfg, now)
	}
	prev := st.Level
	enter, enterWhy := assess(s, cfg, false)
	hold, holdWhy := assess(s, cfg, true)

	var reason string
	st.Host, reason = stepHost(st.Host, s, cfg, enter, enterWhy, hold, holdWhy)
	if !st.DrillUntil.IsZero() && !now.Before(st.DrillUntil) {
		st = endDrill(st)
	}
	level, isDrill := st.Host.Level, false
	switch {
	case st.DrillUntil.IsZero():
		if st.DrillEnded {
			reason = "drill ended; " + reason
			st.DrillEnded = false
		}
	case enter == job.LevelCritical || (st.Level == job.LevelCritical && hold == job.LevelCritical):
		// Interlocks act at once, even over a drill.
		level = job.LevelCritical
		why := enterWhy
		if enter != job.LevelCritical {
			why = holdWhy
		}
		reason = formatReason(why, s)
	default:
		level, isDrill = st.Drill, true
		reason = "drill until " + st.DrillUntil.UTC().Format(time.RFC3339)
	}
	if st.Level != level {
		st.Level, st.Since = level, now
	}

	st = adaptConcurrency(s, st, cfg, symptoms(s, cfg, false) != 0, symptoms(s, cfg, true) != 0)
	return Decision{
		At:               now,
		Level:            st.Level,
		Since:            st.Since,
		Changed:          st.Level != prev,
		Concurrency:      st.Concurrency,
		ReservedCritical: reservedFor(st.Concurrency),
		Reason:           reason,
		Drill:            isDrill,
	}, st
}

// stepHost moves the host's level by the enter and exit assessments of one
// sample, and says why it is where it is.
func stepHost(h hostLevel, s Sample, cfg Config, enter job.Level, enterWhy cause, hold job.Level, holdWhy cause) (hostLevel, string) {
	now := s.At
	var reason string
	switch {
	case enter == job.LevelCritical || enter > h.Level:
		h = enterLevel(h, enter, now)
		reason = formatReason(enterWhy, s)
	case hold >= h.Level:
		h.CalmSince = time.Time{}
		if h.Level > job.LevelNormal {
			reason = formatReason(holdWhy, s)
		}
	default: // the level is no longer justified: step down after a calm dwell
		if h.CalmSince.IsZero() {
			h.CalmSince = now
		}
		calm := now.Sub(h.CalmSince)
		if calm >= cfg.Dwell && now.Sub(h.Since) >= cfg.Dwell {
			h = enterLevel(h, h.Level-1, now)
			if hold < h.Level {
				h.CalmSince = now // the next step needs its own dwell
			}
			reason = "eased for " + calm.String()
		} else {
			reason = "easing for " + calm.String()
		}
		if holdWhy != 0 && h.Level > job.LevelNormal {
			reason += "; " + formatReason(holdWhy, s)
		}
	}
	if reason == "" {
		reason = "no pressure"
	}
	return h, reason
}

func enterLevel(h hostLevel, lvl job.Level, now time.Time) hostLevel {
	if h.Level != lvl {
		h.Level, h.Since = lvl, now
	}
	h.CalmSince = time.Time{}
	return h
}

// adaptConcurrency applies the AIMD law to the worker limit.
func adaptConcurrency(s Sample, st state, cfg Config, symptom, symptomHeld bool) state {
	pressure := st.Level >= job.LevelHigh || (st.Level == job.LevelElevated && symptom)
	calm := st.Level == job.LevelNormal && !symptomHeld
	limit := max(st.Concurrency, s.Limit)
	used := s.Running > 0 && s.Running >= limit-reservedFor(limit)
	switch {
	case pressure && s.At.Sub(st.LastCut) >= aimdDecreaseEvery:
		c := st.Concurrency
		st.Concurrency = max(min(int(float64(c)*aimdBeta), c-1), cfg.MinConcurrency)
		st.LastCut, st.LastGrow = s.At, s.At
	case calm && st.Concurrency < cfg.MaxConcurrency && s.At.Sub(st.LastGrow) >= aimdIncreaseEvery:
		if used {
			st.Concurrency++ // probe: the limit is what holds the work back
		} else {
			// The work needs less than the limit, so a step cannot be
			// judged by its effect: recover toward max quickly, so that
			// pressure that ended leaves no lasting cap on an idle box.
			st.Concurrency *= 2
		}
		st.LastGrow = s.At
	}
	st.Concurrency = min(max(st.Concurrency, cfg.MinConcurrency), cfg.MaxConcurrency)
	return st
}

// reservedFor is the number of slots kept for critical queues.
func reservedFor(limit int) int {
	if limit > 1 {
		return 1
	}
	return 0
}

// cause is a set of reasons for a level; formatReason spells them out.
type cause uint32

const (
	causeMemory cause = 1 << iota
	causeMemoryHigh
	causeMemoryCritical
	causeDiskLow
	causeDiskCritical
	causeGoMem
	causeGoMemCritical
	causeMemoryStall
	causeMemoryThrash
	causeMajorFaults
	causeIOStall
	causeCPUStall
	causeCPUBusy
	causeRunQueue
	causeThermal
	causeCommitLatency
	causeWaitLatency

	harmCauses = causeMemory | causeMemoryHigh | causeDiskLow | causeGoMem |
		causeMemoryStall | causeMemoryThrash | causeMajorFaults | causeIOStall | causeCPUStall | causeThermal
	symptomCauses = causeCommitLatency | causeWaitLatency
)

// symptoms reports which symptoms the engine's figures show.
func symptoms(s Sample, cfg Config, hold bool) cause {
	var c cause
	commit, wait := float64(cfg.CommitLatency), float64(cfg.WaitLatency)
	if hold {
		commit, wait = commit*symptomExitRatio, wait*symptomExitRatio
	}
	if s.CommitP99 > 0 && float64(s.CommitP99) >= commit {
		c |= causeCommitLatency
	}
	if s.WaitP99 > 0 && float64(s.WaitP99) >= wait {
		c |= causeWaitLatency
	}
	return c
}

// assess maps a sample to the level it calls for and why, with the enter
// thresholds, or with the looser exit thresholds when hold is set (is the
// level still justified?).
//
//	critical: an interlock: memory headroom nearly exhausted, disk free
//	          below DiskMinFree, Go memory near GOMEMLIMIT
//	high:     harm together with a symptom; or memory past the midpoint
//	          between Memory.Enter and 100%; or memory thrashing (PSI full)
//	elevated: any harm (memory or disk headroom, a stall, heat), or CPU
//	          busy (or a run queue far above the cores) with a symptom
func assess(s Sample, cfg Config, hold bool) (job.Level, cause) {
	th := func(enter, exit float64) float64 {
		if hold {
			return exit
		}
		return enter
	}
	c := headroomCauses(s, cfg, th) | stallCauses(s, th)
	cpuBusy := s.Known.Has(SignalCPU) && s.CPUBusy >= th(cfg.CPU.Enter, cfg.CPU.Exit)
	if cpuBusy && s.Known.Has(SignalPSICPU) && s.PSICPU.Some10 >= th(psiCPUSomeEnter, psiCPUSomeExit) {
		c |= causeCPUStall
	}
	sym := symptoms(s, cfg, hold)
	if sym != 0 {
		// Utilisation counts only when a symptom says it hurts.
		if cpuBusy && c&causeCPUStall == 0 {
			c |= causeCPUBusy
		}
		if s.Known.Has(SignalLoad) && s.Cores > 0 && s.Load1 >= th(runQueueEnter, runQueueExit)*float64(s.Cores) {
			c |= causeRunQueue
		}
	}

	lvl := job.LevelNormal
	switch {
	case c&(causeMemoryCritical|causeDiskCritical|causeGoMemCritical) != 0:
		lvl = job.LevelCritical
	case c&(causeMemoryHigh|causeMemoryThrash) != 0 || (c&harmCauses != 0 && sym != 0):
		lvl = job.LevelHigh
	case c != 0:
		lvl = job.LevelElevated
	}
	if lvl > job.LevelNormal {
		c |= sym
	}
	return lvl, c
}

// headroomCauses are the causes of memory, disk and Go memory running out;
// th picks the enter or the exit threshold (assess).
func headroomCauses(s Sample, cfg Config, th func(enter, exit float64) float64) cause {
	var c cause
	if s.Known.Has(SignalMemory) {
		m := s.MemPercent()
		if m >= th(cfg.Memory.Enter, cfg.Memory.Exit) {
			c |= causeMemory
		}
		if m >= th((cfg.Memory.Enter+100)/2, cfg.Memory.Enter) {
			c |= causeMemoryHigh
		}
		if m >= th(memCriticalEnter, memCriticalExit) {
			c |= causeMemoryCritical
		}
	}
	if s.Known.Has(SignalDisk) {
		free, floor := float64(s.DiskFree), float64(cfg.DiskMinFree)
		if free < th(2*floor, 2.5*floor) {
			c |= causeDiskLow
		}
		if free < th(floor, 1.25*floor) {
			c |= causeDiskCritical
		}
	}
	if s.Known.Has(SignalGoMemory) {
		g := s.GoMemPercent()
		if g >= th(goMemElevatedEnter, goMemElevatedExit) {
			c |= causeGoMem
		}
		if g >= th(goMemCriticalEnter, goMemCriticalExit) {
			c |= causeGoMemCritical
		}
	}
	return c
}

// stallCauses are the causes of memory and IO stalls (or, without memory
// PSI, major faults) and heat; th as in headroomCauses.
func stallCauses(s Sample, th func(enter, exit float64) float64) cause {
	var c cause
	if s.Known.Has(SignalPSIMemory) {
		if s.PSIMemory.Some10 >= th(psiMemSomeEnter, psiMemSomeExit) {
			c |= causeMemoryStall
		}
		if s.PSIMemory.Full10 >= th(psiMemFullEnter, psiMemFullExit) {
			c |= causeMemoryThrash
		}
	} else if s.Known.Has(SignalMajorFaults) && s.MajorFaults >= th(majorFaultsEnter, majorFaultsExit) {
		c |= causeMajorFaults
	}
	if s.Known.Has(SignalPSIIO) && s.PSIIO.Full10 >= th(psiIOFullEnter, psiIOFullExit) {
		c |= causeIOStall
	}
	if s.Known.Has(SignalThermal) && s.TempC >= th(thermalEnter, thermalExit) {
		c |= causeThermal
	}
	return c
}

// formatReason spells out causes with the sample's figures, most severe
// first: "memory 88.2% (cgroup-v2); commit p99 800ms".
func formatReason(c cause, s Sample) string {
	if c == 0 {
		return ""
	}
	b := make([]byte, 0, 96)
	add := func(text string) {
		if len(b) > 0 {
			b = append(b, "; "...)
		}
		b = append(b, text...)
	}
	pct := func(name string, v float64) {
		add(name + " " + strconv.FormatFloat(v, 'f', 1, 64) + "%")
	}
	switch {
	case c&causeMemoryCritical != 0:
		pct("memory headroom nearly exhausted: memory", s.MemPercent())
	case c&(causeMemory|causeMemoryHigh) != 0:
		pct("memory", s.MemPercent())
	}
	switch {
	case c&causeDiskCritical != 0:
		add("disk free " + formatBytes(s.DiskFree) + " below disk_min_free")
	case c&causeDiskLow != 0:
		add("disk free " + formatBytes(s.DiskFree))
	}
	switch {
	case c&causeGoMemCritical != 0:
		pct("go memory near GOMEMLIMIT:", s.GoMemPercent())
	case c&causeGoMem != 0:
		pct("go memory of GOMEMLIMIT", s.GoMemPercent())
	}
	if c&causeMemoryThrash != 0 {
		pct("memory stall psi full", s.PSIMemory.Full10)
	} else if c&causeMemoryStall != 0 {
		pct("memory stall psi some", s.PSIMemory.Some10)
	}
	if c&causeMajorFaults != 0 {
		add("major faults " + strconv.FormatFloat(s.MajorFaults, 'f', 0, 64) + "/s")
	}
	if c&causeIOStall != 0 {
		pct("io stall psi full", s.PSIIO.Full10)
	}
	if c&causeCPUStall != 0 {
		pct("cpu stall psi some", s.PSICPU.Some10)
	}
	if c&(causeCPUStall|causeCPUBusy) != 0 {
		pct("cpu", s.CPUBusy)
	}
	if c&causeRunQueue != 0 {
		add("load " + strconv.FormatFloat(s.Load1, 'f', 1, 64) + " on " + strconv.Itoa(s.Cores) + " cores")
	}
	if c&causeThermal != 0 {
		add("temperature " + strconv.FormatFloat(s.TempC, 'f', 1, 64) + "C")
	}
	if c&causeCommitLatency != 0 {
		add("commit p99 " + s.CommitP99.String())
	}
	if c&causeWaitLatency != 0 {
		add("wait p99 " + s.WaitP99.String())
	}
	return string(b)
}

func formatBytes(n uint64) string {
	return strconv.FormatFloat(float64(n)/MiB, 'f', 1, 64) + "MiB"
}
