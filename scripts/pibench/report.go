package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// record is one line of bench-pi.sh's results.jsonl: pibench's result plus the
// counters the script read around the load.
type record struct {
	result
	Round      int     `json:"round"`
	CPU        float64 `json:"cpu_us"`
	CgWBytes   float64 `json:"cg_wbytes"`
	CgWIOs     float64 `json:"cg_wios"`
	DevWBytes  float64 `json:"dev_wbytes"`
	DevWIOs    float64 `json:"dev_wios"`
	ProcWBytes float64 `json:"proc_wbytes"`
	CgPeak     float64 `json:"cg_peak"`
	Jbd2Tx     float64 `json:"jbd2_tx"`     // ext4 journal transactions
	Jbd2Blocks float64 `json:"jbd2_blocks"` // 4 KiB blocks the journal logged
	// CFS bandwidth: periods of the cgroup's quota, those in which it was
	// throttled, and the µs it spent throttled.
	CPUPeriods   float64 `json:"cpu_periods"`
	CPUThrottled float64 `json:"cpu_throttled"`
	ThrottledUs  float64 `json:"throttled_us"`
	// edgeq's group commits during the load (its /metrics): fsyncs, the
	// seconds they took, the ops they made durable; 0 for a peer.
	Syncs   float64 `json:"syncs"`
	SyncS   float64 `json:"sync_s"`
	SyncOps float64 `json:"sync_ops"`
	// The cgroup's memory at the end of the load: anonymous, page cache,
	// the part of the page cache mapped.
	CgAnon   float64 `json:"cg_anon"`
	CgCache  float64 `json:"cg_cache"`
	CgMapped float64 `json:"cg_mapped"`
	VmHWM    float64 `json:"vmhwm"`
	Governor string  `json:"governor"` // level changes, "to (reason)", separated by #
}

var letters = map[string]string{"single": "a", "batch": "b", "drain": "c", "mixed": "d", "fill": "e", "wear": "f"}

func readRuns(path string) ([]record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var runs []record
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		runs = append(runs, r)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("%s: no runs", path)
	}
	return runs, nil
}

func report(summarize, check string) error {
	if check != "" {
		if err := checkRuns(check); err != nil {
			return err
		}
	}
	if summarize == "" {
		return nil
	}
	return summarizeRuns(summarize)
}

// checkRuns fails when a run of the file did no job, had errors or
// measured no CPU, memory or write to the card.
func checkRuns(path string) error {
	runs, err := readRuns(path)
	if err != nil {
		return err
	}
	var bad []string
	for _, r := range runs {
		id := r.System + " " + r.Workload
		switch {
		case r.Jobs == 0:
			bad = append(bad, id+": no jobs done")
		case r.Errors > 0:
			bad = append(bad, fmt.Sprintf("%s: %d errors, first: %s", id, r.Errors, r.Error))
		case r.CPU <= 0 || r.VmHWM <= 0 || r.CgPeak <= 0:
			bad = append(bad, id+": no CPU time or memory measured")
		case r.CPUPeriods <= 0:
			bad = append(bad, id+": no CFS period counted (is the CPU quota set?)")
		case r.DevWIOs <= 0 || r.CgWIOs <= 0:
			bad = append(bad, id+": no write to the card charged to the cgroup")
		}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}

// summarizeRuns prints the Markdown table of the file's runs: one row per
// workload and system, medians of its runs.
func summarizeRuns(path string) error {
	runs, err := readRuns(path)
	if err != nil {
		return err
	}
	type key struct{ w, sys string }
	groups := map[key][]record{}
	var keys []key
	for _, r := range runs {
		k := key{letters[r.Workload] + " " + r.Workload, r.System}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], r)
	}
	slices.SortStableFunc(keys, func(a, b key) int { return strings.Compare(a.w, b.w) })
	fmt.Println("| workload | system | runs | jobs/s | p50 ms | p99 ms | CPU µs/job | card B/job | journal B/job | card write IOs/job | charged IOs/job | cgroup peak MiB | page cache MiB at end | VmHWM MiB | throttled periods % | throttled ms/s | ops/fsync | fsync ms | governor |")
	fmt.Println("| --- | --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --- |")
	for _, k := range keys {
		g := groups[k]
		per := func(f func(record) float64) float64 {
			return median(g, func(r record) float64 {
				if r.Jobs == 0 {
					return 0
				}
				return f(r) / float64(r.Jobs)
			})
		}
		p50, p99 := median(g, func(r record) float64 { return r.P50 }), median(g, func(r record) float64 { return r.P99 })
		if (k.sys == "edgeq" || k.sys == "base") && strings.HasSuffix(k.w, "mixed") {
			p50, p99 = median(g, func(r record) float64 { return r.E2EP50 }), median(g, func(r record) float64 { return r.E2EP99 })
		}
		fmt.Printf("| %s | %s | %d | %.0f | %.1f | %.1f | %.0f | %.0f | %.0f | %.2f | %.2f | %.0f | %.0f | %.0f | %.0f | %.0f | %s | %s | %s |\n",
			k.w, k.sys, len(g), median(g, func(r record) float64 { return r.Rate }), p50, p99,
			per(func(r record) float64 { return r.CPU }), per(func(r record) float64 { return r.DevWBytes }),
			per(func(r record) float64 { return r.Jbd2Blocks * 4096 }),
			per(func(r record) float64 { return r.DevWIOs }), per(func(r record) float64 { return r.CgWIOs }),
			median(g, func(r record) float64 { return r.CgPeak })/(1<<20), median(g, func(r record) float64 { return r.CgCache })/(1<<20),
			median(g, func(r record) float64 { return r.VmHWM })/(1<<20),
			median(g, throttledShare), median(g, throttledPerSecond), syncCell(g, opsPerSync, "%.1f"),
			syncCell(g, msPerSync, "%.2f"), governorCell(k.sys, g))
	}
	return nil
}

// throttledShare is the percentage of a run's CFS periods in which the
// cgroup used up its quota and was throttled.
func throttledShare(r record) float64 {
	if r.CPUPeriods == 0 {
		return 0
	}
	return 100 * r.CPUThrottled / r.CPUPeriods
}

// throttledPerSecond is the time a run's cgroup spent throttled, in ms a
// second of the run (its periods are 100 ms each).
func throttledPerSecond(r record) float64 {
	if r.CPUPeriods == 0 {
		return 0
	}
	return r.ThrottledUs / 1000 / (r.CPUPeriods / 10)
}

func opsPerSync(r record) float64 { return r.SyncOps / r.Syncs }
func msPerSync(r record) float64  { return 1000 * r.SyncS / r.Syncs }

// syncCell is the median of f over a group's runs that counted fsyncs,
// "—" where none did (a peer).
func syncCell(g []record, f func(record) float64, format string) string {
	var synced []record
	for _, r := range g {
		if r.Syncs > 0 {
			synced = append(synced, r)
		}
	}
	if len(synced) == 0 {
		return "—"
	}
	return fmt.Sprintf(format, median(synced, f))
}

// governorCell lists the governor's level changes in a group's runs: "—"
// for a system other than edgeq, "none" when there were none.
func governorCell(system string, g []record) string {
	if system != "edgeq" && system != "base" && system != "edgeq-native" {
		return "—"
	}
	var gov []string
	for _, r := range g {
		for _, c := range strings.Split(r.Governor, "#") {
			if c = signals(c); c != "" && !slices.Contains(gov, c) {
				gov = append(gov, c)
			}
		}
	}
	if len(gov) == 0 {
		return "none"
	}
	return strings.Join(gov, "; ")
}

func median(g []record, f func(record) float64) float64 {
	v := make([]float64, len(g))
	for i, r := range g {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// signals shortens a level change, "high (io stall psi full 70.0%; load 5.9
// on 2 cores)", to its level and signals, "high (io stall psi full, load)",
// so that the changes of several runs can be merged.
func signals(change string) string {
	level, reason, ok := strings.Cut(change, " (")
	if !ok {
		return change
	}
	var names []string
	for _, part := range strings.Split(strings.TrimSuffix(reason, ")"), ";") {
		var words []string
		for _, w := range strings.Fields(part) {
			if w[0] >= '0' && w[0] <= '9' {
				break
			}
			words = append(words, w)
		}
		if n := strings.Join(words, " "); n != "" {
			names = append(names, n)
		}
	}
	return level + " (" + strings.Join(names, ", ") + ")"
}
