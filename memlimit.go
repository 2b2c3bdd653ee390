package main

import (
	"log/slog"
	"math"
	"runtime/debug"

	"github.com/edgeq/edgeq/resource"
	"github.com/edgeq/edgeq/storage"
)

// memoryLimit is the Go runtime's soft memory limit that serve sets, and
// where it comes from. GOMEMLIMIT, when set, is the runtime's own and wins
// (limit 0). Else, in a memory cgroup with a limit, two thirds of its
// tightest limit (memory.max, memory.high, memory.limit_in_bytes): the rest
// is for Badger's mappings and the page cache that the cgroup also counts,
// and a heap at two thirds of MemoryHigh stays under the governor's 75%
// exit threshold. Else the store profile's (storage.SoftMemoryLimit).
// Without a soft limit the heap grows to twice what is live before a GC,
// which on a 256 MiB box is the difference between a peak and an OOM kill.
func memoryLimit(gomemlimit, root, profile string) (limit int64, source string) {
	if gomemlimit != "" {
		return 0, "GOMEMLIMIT"
	}
	if cg, ok := resource.CgroupMemoryLimit(root); ok && cg < math.MaxInt64/2 {
		return int64(cg) * 2 / 3, "cgroup"
	}
	return storage.SoftMemoryLimit(profile), "storage.memory"
}

// setMemoryLimit applies memoryLimit to the runtime and logs it. It
// reports whether the limit is derived (not GOMEMLIMIT): such a limit steers
// the GC only, and the governor does not shed on Go memory against it
// (daemon.Config.GoMemoryDerived): on a box without a cgroup limit nothing
// kills the process at that figure, and in a cgroup the governor watches
// the cgroup's own limit.
func setMemoryLimit(log *slog.Logger, e env, profile string) (derived bool) {
	gomemlimit, _ := e.getenv("GOMEMLIMIT")
	limit, source := memoryLimit(gomemlimit, "/", profile)
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	log.Info("go memory limit", "mib", debug.SetMemoryLimit(-1)>>20, "source", source)
	return limit > 0
}
