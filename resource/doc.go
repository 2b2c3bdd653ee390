// Package resource is edgeq's resource governor (SPEC §1 items 1 and 3, §8):
// it samples the host, sets a pressure level normal → elevated → high →
// critical that the engine sheds work by, and adapts the total worker limit.
//
// The governor acts on harm to the host and the service, never on
// utilisation or queue depth alone: 100% CPU at a healthy peak is success.
//
// # Signals
//
// A Sampler produces a Sample; Sample.Known says which signals it holds, and
// a signal that is not known never counts. LinuxSampler reads:
//
//   - CPU busy from gopsutil cpu.Times, as deltas between its own samples
//     (cpu.Percent keeps one package-global baseline and sleeps for an
//     interval, so it is not used); load average from load.Avg.
//   - Memory: the own cgroup (from /proc/self/cgroup) when it has a limit,
//     as anonymous memory (v2 memory.stat anon; v1 total_rss) against the
//     tightest of memory.max and memory.high of the cgroup and its ancestors
//     (v1: memory.limit_in_bytes and hierarchical_memory_limit). Page cache
//     (memory.current includes Badger's mapped files) is left out because
//     the kernel reclaims it. Without a memory controller, or with a limit
//     above the host's RAM: the host's MemTotal − MemAvailable of MemTotal
//     (gopsutil mem.VirtualMemory). With a cgroup limit the higher of the
//     two shares counts, since a host out of memory hurts whatever the
//     cgroup says.
//   - Disk: free bytes of the data dir's file system (gopsutil disk.Usage).
//   - PSI: /proc/pressure/{cpu,memory,io} and the own cgroup v2
//     {cpu,memory,io}.pressure, the higher of the two. Stock Raspberry Pi
//     kernels have neither; major faults per second (/proc/vmstat
//     pgmajfault deltas) then stand in for memory stalls.
//   - Thermal: the hottest /sys/class/thermal/thermal_zone*/temp (gopsutil
//     host.SensorsTemperatures is unreliable on Raspberry Pi kernels).
//   - Go memory: runtime/metrics memory that a collection cannot free (all
//     runtime memory less released and free heap and dead objects) against
//     GOMEMLIMIT (debug.SetMemoryLimit(-1)); known only when a soft limit is set
//     and the sampler was not told to ignore it (IgnoreGoMemory: a limit that
//     edgeq serve derived steers the GC only).
//     Usage.Transient (the transports' bounded buffers in use, such as MQTT
//     messages waiting for their commit) is left out: the daemon's own
//     ingest burst is not memory pressure and must not shed unrelated work.
//
// The engine adds, through the usage function given to New: jobs running,
// the worker limit in force, and two symptoms, commit latency p99 and job
// wait latency p99 (of latency-sensitive queues: the wait of a bulk backlog
// is queue depth, which must not count).
//
// Every reader takes a root directory ("/" in production), so tests run
// them on fixture trees under testdata/.
//
// # Levels
//
// decide (decide.go) is a pure function of the sample, the previous state
// and the configuration. Each signal has an enter threshold and a looser
// exit threshold (the level it gave is kept while the exit one still
// holds). M and C are the configured Memory and CPU thresholds, min is
// DiskMinFree.
//
//	signal                        enter          exit           counts as
//	memory percent                ≥ M.Enter (85) ≥ M.Exit (75)  harm
//	memory percent                ≥ (M.Enter+100)/2 ≥ M.Enter   high on its own
//	memory percent                ≥ 97           ≥ 95           critical (interlock)
//	disk free                     < 2×min        < 2.5×min      harm
//	disk free                     < min          < 1.25×min     critical (interlock)
//	Go memory of GOMEMLIMIT       ≥ 80%          ≥ 70%          harm
//	Go memory of GOMEMLIMIT       ≥ 90%          ≥ 85%          critical (interlock)
//	PSI memory some avg10         ≥ 10%          ≥ 5%           harm (stall)
//	PSI memory full avg10         ≥ 10%          ≥ 5%           high on its own (thrashing)
//	major faults, no PSI memory   ≥ 100/s        ≥ 50/s         harm (stall)
//	PSI io full avg10             ≥ 30%          ≥ 15%          harm (stall)
//	CPU busy and PSI cpu some     ≥ C.Enter, 50% ≥ C.Exit, 25%  harm (stall)
//	thermal                       ≥ 80 °C        ≥ 75 °C        harm
//	commit p99                    ≥ CommitLatency (500ms) ≥ 75% of it  symptom
//	wait p99                      ≥ WaitLatency (10s)     ≥ 75% of it  symptom
//	CPU busy, with a symptom      ≥ C.Enter (90) ≥ C.Exit (75)  elevated
//	load1 per core, with a symptom ≥ 2           ≥ 1.5          elevated
//
// The level a sample calls for is critical on any interlock; high on harm
// together with a symptom, or on the two "high on its own" rows; elevated on
// any harm, or on CPU busy or run queue corroborated by a symptom; normal
// otherwise. CPU utilisation alone, a symptom alone, and queue depth never
// raise the level.
//
// Moving between levels:
//   - Up: as soon as the enter thresholds call for a higher level, in the
//     same sample, skipping levels if need be.
//   - Staying: while the exit thresholds still justify the current level.
//   - Down: one level at a time, once the exit thresholds have failed to
//     justify the level for a whole Dwell ("calm") and the level has been
//     held for at least Dwell; each further step needs a Dwell of its own.
//     So a signal flapping across a threshold holds the higher level rather
//     than flapping it.
//
// # Concurrency (AIMD)
//
// The total worker limit c starts at MaxConcurrency and moves, once per
// sample at most, by
//
//	pressure (level ≥ high, or elevated with a symptom):
//	    c ← max(MinConcurrency, min(c−1, ⌊0.75·c⌋))   at most once per 5s
//	no pressure (level normal, no symptom) and the limit used
//	(running ≥ limit − ReservedCritical):
//	    c ← min(MaxConcurrency, c+1)                   at most once per 5s
//	no pressure and the limit not used:
//	    c ← min(MaxConcurrency, 2·c)                   at most once per 5s
//	otherwise (elevated without a symptom): c stays.
//
// The 5s spacing lets PSI avg10 and the latency windows see a change before
// the next one; after a cut the limit grows again no sooner than 5s later.
// A limit the work does not reach cannot be probed by its effect, so it
// recovers by doubling: once pressure has ended (the level is back to
// normal), the limit is back at MaxConcurrency within ⌈log2(max/min)⌉ × 5s
// when idle (15s for 1 → 8) and within (max − min) × 5s when every slot
// stays busy.
// Of c, ReservedCritical (1 whenever c > 1) slots are kept for critical
// queues: other classes may run at most c − ReservedCritical jobs. Drills
// move c like the levels they force.
//
// # Drills
//
// Governor.Drill forces a level for a duration (at most MaxDrill);
// decisions during it give the drill as their reason, and Status shows its
// level and end. Interlocks still win. decide keeps stepping the level the
// host's own signals hold (state.Host) under the drill, so that when the
// drill ends (it runs out, which Run notices at its end rather than at the
// next sample, or ClearDrill) that level is in force at once: a drill is a
// rehearsal and leaves no pressure behind.
//
// # Events and logs
//
// Every level change logs one "governor level changed" line (warn going up,
// info going down) with from, to, reason, concurrency and every known signal,
// and is offered to each subscriber (Subscribe).
//
// # Goroutines and locks
//
// Run is the governor's loop, run by its owner (main) until its context is
// done. Each subscription owns one goroutine that calls its function; the
// cancel function returned by Subscribe stops it and waits for it. Nothing
// else starts goroutines.
//
// Governor.mu guards the decision state, the last sample and the subscriber
// list; it is held while deciding and while offering events (which never
// blocks), never while sampling or logging. Level and Concurrency read
// atomics and take no lock. LinuxSampler.mu serializes its samples.
//
// # Cost
//
// One tick (LinuxSampler.Sample and decide) took about 190µs, 20 KiB and
// 221 allocations on the 2-vCPU development VM, that is about 0.02% of one
// core at the default 1 Hz; decide alone takes about 190ns. Reproduce with
//
//	go test -run '^$' -bench . -benchmem ./resource/
//
// # Wiring (main)
//
//	sampler := resource.NewLinuxSampler(dataDir, "/")
//	gov, err := resource.New(cfg, sampler, func() resource.Usage { ... from the engine ... })
//	g.Go(func() error { return gov.Run(ctx) })
//
// Admission reads gov.Level() per request, dispatch reads
// gov.Concurrency(); GET /v1/stats and /metrics read gov.Status(), a typed
// value the HTTP API writes as the SPEC block; the alerts topic and metrics
// Subscribe.
package resource
