package e2e

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestBenchDaemonCPU runs `edgeq bench --pid` against a real daemon: it
// reports the daemon's CPU time over the run and per job, and refuses a
// process it cannot read before sending any load.
func TestBenchDaemonCPU(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, t.TempDir())
	pid := strconv.Itoa(d.cmd.Process.Pid)
	for _, tc := range []struct {
		name string
		args []string
		jobs int64
	}{
		{"single", []string{"--producers", "4", "--count", "400"}, 400},
		{"batch", []string{"--producers", "2", "--batch", "100", "--count", "2000", "--keep"}, 2000},
		{"drain", []string{"--producers", "0", "--consumers", "2", "--count", "2000"}, 2000},
	} {
		args := append([]string{"bench", "--addr", d.base, "--pid", pid, "--json"}, tc.args...)
		out, err := exec.Command(binary(t), args...).Output()
		if err != nil {
			t.Fatalf("%s: edgeq %s: %v", tc.name, strings.Join(args, " "), err)
		}
		var r struct {
			Enqueued, Consumed int64
			CPU                *struct {
				PID       int     `json:"pid"`
				Seconds   float64 `json:"seconds"`
				USPerJob  float64 `json:"us_per_job"`
				PerJobsOf string  `json:"per"`
			} `json:"daemon_cpu"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("%s: %v\n%s", tc.name, err, out)
		}
		jobs := max(r.Enqueued, r.Consumed)
		if jobs != tc.jobs || r.CPU == nil || r.CPU.PID != d.cmd.Process.Pid || r.CPU.Seconds <= 0 {
			t.Fatalf("%s: want %d jobs and the daemon's CPU time, got %s", tc.name, tc.jobs, out)
		}
		// The per-job figure is the total over the jobs (the total is in
		// clock ticks, so this holds within rounding).
		if want := r.CPU.Seconds * 1e6 / float64(jobs); r.CPU.USPerJob < want*0.99 || r.CPU.USPerJob > want*1.01 {
			t.Errorf("%s: us_per_job %.2f, want %.2f (%.4fs over %d jobs)", tc.name, r.CPU.USPerJob, want, r.CPU.Seconds, jobs)
		}
	}

	for _, tc := range []struct{ pid, want string }{
		{"0", "--pid: want a process id above 0"},
		{"-3", "--pid: want a process id above 0"},
		{"999999999", "--pid 999999999: read its CPU time"},
	} {
		cmd := exec.Command(binary(t), "bench", "--addr", d.base, "--pid", tc.pid, "--count", "10")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("bench --pid %s: err %v, output %q: want a refusal saying %q", tc.pid, err, out, tc.want)
		}
		if strings.Contains(string(out), "enqueued") {
			t.Errorf("bench --pid %s sent load before refusing: %q", tc.pid, out)
		}
	}
}
