package resource

import (
	"context"
	"math"
	"strings"
	"time"
)

// Sampler takes one sample of the host. Implementations need not be safe
// for concurrent use: the Governor calls Sample from Run only.
type Sampler interface {
	Sample(ctx context.Context) (Sample, error)
}

// Usage is what the engine reports to the governor at every sample: how much
// of the worker limit is in use and how the service is doing (the symptoms).
// Zero values mean "unknown" and never count as a symptom.
type Usage struct {
	Running   int           // jobs running in workers now
	Limit     int           // worker limit in force now
	CommitP99 time.Duration // commit (fsync) latency p99 over a recent window
	WaitP99   time.Duration // ready-to-leased wait p99 of latency-sensitive (critical, high) queues
	// Transient is the bytes of the daemon's own bounded buffers in use now
	// (MQTT messages in hand): Go memory that their commit gives back,
	// left out of the Go memory signal so that a burst of ingest is not
	// taken for memory pressure.
	Transient uint64
}

// Signals is a set of host signals. A Sample's Known field says which of its
// fields were measured: a probe whose file is missing leaves its bit clear
// and its fields zero, and the decision ignores it.
type Signals uint32

// Host signals.
const (
	SignalCPU         Signals = 1 << iota // CPUBusy and Cores
	SignalLoad                            // Load1 and Cores
	SignalMemory                          // MemUsed, MemLimit and MemSource
	SignalDisk                            // DiskFree and DiskTotal
	SignalPSICPU                          // PSICPU
	SignalPSIMemory                       // PSIMemory
	SignalPSIIO                           // PSIIO
	SignalMajorFaults                     // MajorFaults
	SignalGoMemory                        // GoMem and GoMemLimit (only when GOMEMLIMIT is set)
	SignalThermal                         // TempC
)

var signalNames = [...]string{"cpu", "load", "memory", "disk", "psi-cpu", "psi-memory", "psi-io", "major-faults", "go-memory", "thermal"}

// Has reports whether every signal of x is in s.
func (s Signals) Has(x Signals) bool { return s&x == x }

// String lists the signals, comma-separated ("cpu,memory,disk").
func (s Signals) String() string {
	var b strings.Builder
	for i, n := range signalNames {
		if s&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(n)
		}
	}
	return b.String()
}

// MemorySource says which limit MemUsed and MemLimit are measured against.
type MemorySource uint8

// Memory sources.
const (
	MemoryHost     MemorySource = iota // MemTotal − MemAvailable of MemTotal (/proc/meminfo)
	MemoryCgroupV1                     // rss of the own cgroup's limit (memory.limit_in_bytes)
	MemoryCgroupV2                     // anon of the own cgroup's limit (memory.max, memory.high)
)

func (m MemorySource) String() string {
	switch m {
	case MemoryCgroupV1:
		return "cgroup-v1"
	case MemoryCgroupV2:
		return "cgroup-v2"
	}
	return "host"
}

// Pressure is one PSI resource: the share of the last 10 s in which some
// (at least one) or all non-idle tasks were stalled on it, in percent.
type Pressure struct {
	Some10 float64
	Full10 float64
}

// Sample is one reading of the host and of the engine. The Governor sets At
// from its clock and the engine fields from its usage function.
type Sample struct {
	At    time.Time
	Known Signals

	CPUBusy float64 // percent of all CPUs busy since the previous sample
	Cores   int     // CPUs online
	Load1   float64 // 1-minute load average (runnable and uninterruptible tasks)

	// Memory in use and the limit it is measured against: the own cgroup's
	// anonymous memory against its limit when one is set (page cache, such
	// as Badger's mapped files, is left out because the kernel reclaims
	// it), or the host's MemTotal − MemAvailable against MemTotal, whichever
	// is the higher share.
	MemUsed   uint64
	MemLimit  uint64
	MemSource MemorySource

	DiskFree  uint64 // bytes available to the service on the data dir's file system
	DiskTotal uint64

	// Pressure stall information: the higher of the host's (/proc/pressure)
	// and the own cgroup's (*.pressure) figures.
	PSICPU    Pressure
	PSIMemory Pressure
	PSIIO     Pressure

	MajorFaults float64 // major page faults per second, host-wide (/proc/vmstat pgmajfault)

	// Go runtime memory that a collection cannot free (live heap plus
	// runtime overheads) and the soft limit GOMEMLIMIT.
	GoMem      uint64
	GoMemLimit uint64

	TempC float64 // hottest thermal zone, degrees Celsius

	Usage // from the engine
}

// MemPercent is MemUsed as a percentage of MemLimit (0 when unknown).
func (s Sample) MemPercent() float64 { return percent(s.MemUsed, s.MemLimit) }

// GoMemPercent is GoMem less Transient as a percentage of GoMemLimit (0
// when unknown).
func (s Sample) GoMemPercent() float64 {
	return percent(s.GoMem-min(s.Transient, s.GoMem), s.GoMemLimit)
}

func percent(used, limit uint64) float64 {
	if limit == 0 {
		return 0
	}
	return math.Min(100*float64(used)/float64(limit), 100)
}
