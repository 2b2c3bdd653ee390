package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// daemonCPU is the CPU time a daemon (its PID given to `edgeq bench --pid`)
// spent during a run: user plus system time of all its threads, from
// /proc/PID/stat at the start and at the end of the load. The load
// generator's own CPU is not in it.
type daemonCPU struct {
	PID      int     `json:"pid"`
	Seconds  float64 `json:"seconds"`
	USPerJob float64 `json:"us_per_job"`
	Per      string  `json:"per"` // "enqueued" or "consumed": the jobs it is divided by
}

// userHZ is the unit of the times in /proc/PID/stat (USER_HZ, which Linux
// fixes at 100 on every architecture it exposes to user space).
const userHZ = 100

// procCPU reads the user plus system time that process pid has used.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseProcStat(string(b))
}

// parseProcStat reads utime and stime (fields 14 and 15) from the text of
// /proc/PID/stat. The command name (field 2) is in parentheses and may
// hold spaces and parentheses itself, so fields are counted from the last
// ')'.
func parseProcStat(s string) (time.Duration, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat %q: no command name", s)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("stat: utime or stime %q: not a tick count", v)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// newDaemonCPU divides the daemon's CPU time over a run by its jobs: those
// enqueued, or those consumed when the run had no producers.
func newDaemonCPU(pid int, d time.Duration, r benchResult) *daemonCPU {
	c := &daemonCPU{PID: pid, Seconds: d.Seconds(), Per: "enqueued"}
	jobs := r.Enqueued
	if r.Config.Producers == 0 {
		c.Per, jobs = "consumed", r.Consumed
	}
	if jobs > 0 {
		c.USPerJob = float64(d.Microseconds()) / float64(jobs)
	}
	return c
}
