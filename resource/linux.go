package resource

import (
	"cmp"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shirou/gopsutil/v3/common"
	"github.com/shirou/gopsutil/v3/cpu"
	"github.com/shirou/gopsutil/v3/disk"
	"github.com/shirou/gopsutil/v3/load"
	"github.com/shirou/gopsutil/v3/mem"
)

// LinuxSampler samples a Linux host: CPU, load, host memory and disk through
// gopsutil (pointed at root), and with its own readers pressure stall
// information, the own cgroup's memory, major faults and thermal zones, plus
// the Go runtime's memory against GOMEMLIMIT.
//
// It keeps no package-global state (unlike gopsutil's cpu.Percent, whose
// baseline every caller shares): CPU busy and the major fault rate are
// deltas against this sampler's previous sample, so the first sample has
// neither. Every reader degrades to "unknown" when its file is missing.
//
// LinuxSampler is safe for concurrent use; samples are serialized.
type LinuxSampler struct {
	dataDir string
	root    string
	env     common.EnvMap
	now     func() time.Time // for rates; tests replace it

	mu         sync.Mutex
	buf        []byte        // guarded by mu: read buffer, reused
	prevCPU    cpu.TimesStat // guarded by mu
	hasPrevCPU bool          // guarded by mu
	prevFaults uint64        // guarded by mu
	prevAt     time.Time     // guarded by mu: when prevFaults was read
	resolved   bool          // guarded by mu: cg and zones are found once
	cg         cgroupFiles   // guarded by mu
	zones      []string      // guarded by mu: thermal zone temp files
	rtm        []metrics.Sample
	noGoMem    bool // set before the first Sample: Go memory is not a signal

	psiHost [3]string // cpu, memory, io under root/proc/pressure
	vmstat  string
	loadavg string
}

// cgroupFiles are the own cgroup's files, found once from /proc/self/cgroup.
type cgroupFiles struct {
	version  int      // 0: no memory controller; 1 or 2
	stat     string   // memory.stat
	limits   []string // v1: memory.limit_in_bytes; v2: memory.max and memory.high of the cgroup and its ancestors
	usedKeys []string // memory.stat keys for anonymous memory, first found wins
	psi      [3]string
}

// Runtime metrics read for GoMem, in this order.
var goMemMetrics = [...]string{
	"/memory/classes/total:bytes",
	"/memory/classes/heap/released:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/objects:bytes",
	"/gc/heap/live:bytes",
}

// NewLinuxSampler returns a sampler for the host whose file systems are
// mounted under root ("/" in production; a fixture directory in tests, with
// proc/ and sys/ beneath it). dataDir is the directory whose file system's
// free space is watched (a real path, not under root); "" leaves disk unknown.
func NewLinuxSampler(dataDir, root string) *LinuxSampler {
	root = cmp.Or(root, "/")
	s := &LinuxSampler{
		dataDir: dataDir,
		root:    root,
		env: common.EnvMap{
			common.HostProcEnvKey: filepath.Join(root, "proc"),
			common.HostSysEnvKey:  filepath.Join(root, "sys"),
		},
		now:     time.Now,
		buf:     make([]byte, 0, 4096),
		vmstat:  filepath.Join(root, "proc/vmstat"),
		loadavg: filepath.Join(root, "proc/loadavg"),
	}
	for i, r := range psiResources {
		s.psiHost[i] = filepath.Join(root, "proc/pressure", r)
	}
	s.rtm = make([]metrics.Sample, len(goMemMetrics))
	for i, n := range goMemMetrics {
		s.rtm[i].Name = n
	}
	return s
}

var psiResources = [3]string{"cpu", "memory", "io"}

// Sample reads every probe once. It fails only when ctx is done or when no
// signal at all could be read (a wrong root); otherwise the missing signals
// are simply left out of Known.
func (s *LinuxSampler) Sample(ctx context.Context) (Sample, error) {
	if err := ctx.Err(); err != nil {
		return Sample{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.resolved {
		s.cg = s.findCgroup()
		s.zones = s.findThermalZones()
		s.resolved = true
	}
	gctx := context.WithValue(ctx, common.EnvKey, s.env)
	var out Sample
	s.sampleCPU(gctx, &out)
	// load.Avg falls back to sysinfo(2), which knows nothing of root: on a
	// fixture tree without loadavg that would be this host's figure.
	if s.root == "/" || exists(s.loadavg) {
		if avg, err := load.AvgWithContext(gctx); err == nil {
			out.Load1 = avg.Load1
			out.Known |= SignalLoad
		}
	}
	s.sampleMemory(gctx, &out)
	if s.dataDir != "" {
		if u, err := disk.UsageWithContext(gctx, s.dataDir); err == nil {
			out.DiskFree, out.DiskTotal = u.Free, u.Total
			out.Known |= SignalDisk
		}
	}
	s.samplePSI(&out)
	s.sampleFaults(&out)
	s.sampleThermal(&out)
	s.sampleGoMem(&out)
	if out.Known == 0 {
		return out, errors.New("resource: no host signal readable under " + s.root)
	}
	return out, nil
}

func (s *LinuxSampler) sampleCPU(ctx context.Context, out *Sample) {
	per, err := cpu.TimesWithContext(ctx, true)
	if err != nil || len(per) == 0 {
		return
	}
	var t cpu.TimesStat
	for _, c := range per {
		t.User += c.User
		t.Nice += c.Nice
		t.System += c.System
		t.Idle += c.Idle
		t.Iowait += c.Iowait
		t.Irq += c.Irq
		t.Softirq += c.Softirq
		t.Steal += c.Steal
	}
	out.Cores = len(per)
	if s.hasPrevCPU {
		if busy, ok := cpuBusy(s.prevCPU, t); ok {
			out.CPUBusy = busy
			out.Known |= SignalCPU
		}
	}
	s.prevCPU, s.hasPrevCPU = t, true
}

// cpuBusy is the busy percentage between two cumulative readings. Guest time
// is already inside User and Nice; steal counts as busy (the CPU was not
// ours to use).
func cpuBusy(a, b cpu.TimesStat) (float64, bool) {
	busy := func(t cpu.TimesStat) float64 {
		return t.User + t.Nice + t.System + t.Irq + t.Softirq + t.Steal
	}
	idle := func(t cpu.TimesStat) float64 { return t.Idle + t.Iowait }
	db, di := busy(b)-busy(a), idle(b)-idle(a)
	if db < 0 || di < 0 || db+di <= 0 {
		return 0, false // counters went back (CPU hotplug) or did not move
	}
	return 100 * db / (db + di), true
}

func (s *LinuxSampler) sampleMemory(ctx context.Context, out *Sample) {
	var hostUsed, hostTotal uint64
	if vm, err := mem.VirtualMemoryWithContext(ctx); err == nil && vm.Total > 0 && vm.Available <= vm.Total {
		hostUsed, hostTotal = vm.Total-vm.Available, vm.Total
		out.MemUsed, out.MemLimit, out.MemSource = hostUsed, hostTotal, MemoryHost
		out.Known |= SignalMemory
	}
	used, limit, ok := s.cgroupMemory()
	if !ok || limit == unlimited || (hostTotal > 0 && limit >= hostTotal) {
		return // no cgroup limit, or one the host cannot reach: the host figure stands
	}
	if !out.Known.Has(SignalMemory) || percent(used, limit) >= percent(hostUsed, hostTotal) {
		out.MemUsed, out.MemLimit = used, limit
		out.MemSource = MemoryCgroupV2
		if s.cg.version == 1 {
			out.MemSource = MemoryCgroupV1
		}
		out.Known |= SignalMemory
	}
}

// cgroupMemory reads the own cgroup's anonymous memory and its tightest limit.
func (s *LinuxSampler) cgroupMemory() (used, limit uint64, ok bool) {
	if s.cg.version == 0 {
		return 0, 0, false
	}
	b, err := s.read(s.cg.stat)
	if err != nil {
		return 0, 0, false
	}
	found := false
	for _, k := range s.cg.usedKeys {
		if used, err = parseKeyValue(b, k); err == nil {
			found = true
			break
		}
	}
	if !found {
		return 0, 0, false
	}
	return used, s.cgroupLimit(b), true
}

// cgroupLimit is the tightest memory limit of the own cgroup and its
// ancestors (unlimited when none is set); stat is its memory.stat.
func (s *LinuxSampler) cgroupLimit(stat []byte) uint64 {
	limit := uint64(unlimited)
	if s.cg.version == 1 {
		if h, err := parseKeyValue(stat, "hierarchical_memory_limit"); err == nil && h < 1<<62 {
			limit = h
		}
	}
	for _, f := range s.cg.limits {
		if b, err := s.read(f); err == nil {
			if l, err := parseLimit(b); err == nil {
				limit = min(limit, l)
			}
		}
	}
	return limit
}

// CgroupMemoryLimit reads the tightest memory limit (v1
// memory.limit_in_bytes; v2 memory.max and memory.high) of the own cgroup
// and its ancestors on the host whose file systems are mounted under root,
// as the sampler does. ok is false when there is no memory controller or no
// limit is set.
func CgroupMemoryLimit(root string) (limit uint64, ok bool) {
	s := NewLinuxSampler("", root)
	s.cg = s.findCgroup()
	if s.cg.version == 0 {
		return 0, false
	}
	stat, err := s.read(s.cg.stat)
	if err != nil {
		stat = nil
	}
	limit = s.cgroupLimit(stat)
	return limit, limit != unlimited
}

func (s *LinuxSampler) samplePSI(out *Sample) {
	bits := [3]Signals{SignalPSICPU, SignalPSIMemory, SignalPSIIO}
	dst := [3]*Pressure{&out.PSICPU, &out.PSIMemory, &out.PSIIO}
	for i := range psiResources {
		for _, f := range [2]string{s.psiHost[i], s.cg.psi[i]} {
			if f == "" {
				continue
			}
			b, err := s.read(f)
			if err != nil {
				continue
			}
			p, err := parsePSI(b)
			if err != nil {
				continue
			}
			dst[i].Some10 = math.Max(dst[i].Some10, p.Some10)
			dst[i].Full10 = math.Max(dst[i].Full10, p.Full10)
			out.Known |= bits[i]
		}
	}
}

func (s *LinuxSampler) sampleFaults(out *Sample) {
	b, err := s.read(s.vmstat)
	if err != nil {
		return
	}
	n, err := parseKeyValue(b, "pgmajfault")
	if err != nil {
		return
	}
	now := s.now()
	if !s.prevAt.IsZero() && n >= s.prevFaults {
		if dt := now.Sub(s.prevAt).Seconds(); dt > 0 {
			out.MajorFaults = float64(n-s.prevFaults) / dt
			out.Known |= SignalMajorFaults
		}
	}
	s.prevFaults, s.prevAt = n, now
}

func (s *LinuxSampler) sampleThermal(out *Sample) {
	hottest, found := math.Inf(-1), false
	for _, f := range s.zones {
		b, err := s.read(f)
		if err != nil {
			continue // some zones answer EINVAL or ENODATA when their sensor is off
		}
		if c, err := parseMilliCelsius(b); err == nil {
			hottest, found = math.Max(hottest, c), true
		}
	}
	if found {
		out.TempC = hottest
		out.Known |= SignalThermal
	}
}

// IgnoreGoMemory leaves Go memory out of the samples, for a soft memory
// limit that only steers the garbage collector: one that edgeq serve derived
// from its cgroup's limit or its store profile, whose memory the cgroup and
// host signals already watch, as opposed to a GOMEMLIMIT that an operator
// sized below a hard limit. Call it before the first Sample.
func (s *LinuxSampler) IgnoreGoMemory() { s.noGoMem = true }

func (s *LinuxSampler) sampleGoMem(out *Sample) {
	if s.noGoMem {
		return
	}
	limit := debug.SetMemoryLimit(-1)
	if limit <= 0 || limit == math.MaxInt64 {
		return // GOMEMLIMIT unset: nothing to be near
	}
	metrics.Read(s.rtm)
	var v [len(goMemMetrics)]uint64
	for i, m := range s.rtm {
		if m.Value.Kind() != metrics.KindUint64 {
			return
		}
		v[i] = m.Value.Uint64()
	}
	total, released, free, objects, live := v[0], v[1], v[2], v[3], v[4]
	reducible := released + free + max(objects, live) - live // dead objects a collection frees
	if reducible > total {
		return
	}
	out.GoMem, out.GoMemLimit = total-reducible, uint64(limit)
	out.Known |= SignalGoMemory
}

// findCgroup locates the own cgroup's memory files. A v1 memory hierarchy
// wins (on hybrid hosts memory is accounted there); otherwise the unified
// hierarchy, when its memory controller is enabled for the cgroup. When the
// path from /proc/self/cgroup does not exist under the mount (a container
// without a cgroup namespace sees its own cgroup as the mount's root), the
// mount's root is used.
func (s *LinuxSampler) findCgroup() cgroupFiles {
	var cg cgroupFiles
	b, err := s.read(filepath.Join(s.root, "proc/self/cgroup"))
	if err != nil {
		return cg
	}
	pc, err := parseProcCgroup(b)
	if err != nil {
		return cg
	}
	sysfs := filepath.Join(s.root, "sys/fs/cgroup")
	if pc.hasV1M {
		mount := filepath.Join(sysfs, "memory")
		if exists(filepath.Join(mount, "memory.limit_in_bytes")) {
			dir := cgroupDir(mount, pc.v1Mem, "memory.limit_in_bytes")
			cg.version = 1
			cg.stat = filepath.Join(dir, "memory.stat")
			cg.usedKeys = []string{"total_rss", "rss"}
			cg.limits = []string{filepath.Join(dir, "memory.limit_in_bytes")}
		}
	}
	if !pc.hasV2 {
		return cg
	}
	for _, mount := range []string{sysfs, filepath.Join(sysfs, "unified")} {
		if !exists(filepath.Join(mount, "cgroup.controllers")) {
			continue
		}
		dir := cgroupDir(mount, pc.v2, "cgroup.controllers")
		for i, r := range psiResources {
			cg.psi[i] = filepath.Join(dir, r+".pressure")
		}
		if cg.version == 0 && exists(filepath.Join(dir, "memory.stat")) {
			cg.version = 2
			cg.stat = filepath.Join(dir, "memory.stat")
			cg.usedKeys = []string{"anon"}
			// The tightest of the cgroup's and its ancestors' limits binds.
			// The host's root cgroup has no limit files; a container's
			// namespace root (mounted as the mount's root) has.
			for d := dir; strings.HasPrefix(d, mount); d = filepath.Dir(d) {
				cg.limits = append(cg.limits, filepath.Join(d, "memory.max"), filepath.Join(d, "memory.high"))
				if d == mount {
					break
				}
			}
		}
		break
	}
	return cg
}

// cgroupDir joins a cgroup path to its mount, falling back to the mount
// itself when the cgroup's directory (probed by file) is not there.
func cgroupDir(mount, path, probe string) string {
	dir := filepath.Join(mount, path)
	if !exists(filepath.Join(dir, probe)) {
		return mount
	}
	return dir
}

func (s *LinuxSampler) findThermalZones() []string {
	dir := filepath.Join(s.root, "sys/class/thermal")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var zones []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "thermal_zone") {
			zones = append(zones, filepath.Join(dir, e.Name(), "temp"))
		}
	}
	return zones
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// read reads a whole file into the sampler's buffer; the result is valid
// until the next read. Files under /proc and /sys report no size, so it
// reads to EOF. It calls open(2) and read(2) directly: os.Open would also
// try to register each file with the network poller, which costs two more
// system calls per file for nothing.
func (s *LinuxSampler) read(path string) ([]byte, error) {
	fd, err := openRetry(path)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	s.buf = s.buf[:0]
	for {
		if len(s.buf) == cap(s.buf) {
			s.buf = append(s.buf, 0)[:len(s.buf)]
		}
		n, err := syscall.Read(fd, s.buf[len(s.buf):cap(s.buf)])
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return s.buf, nil
		}
		s.buf = s.buf[:len(s.buf)+n]
	}
}

func openRetry(path string) (int, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}
