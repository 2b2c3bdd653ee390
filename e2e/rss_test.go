package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rss reads VmRSS and RssAnon of pid in MiB.
func rss(pid int) (vm, anon float64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(fields[1], 64)
		switch fields[0] {
		case "VmRSS:":
			vm = kb / 1024
		case "RssAnon:":
			anon = kb / 1024
		}
	}
	return vm, anon, sc.Err()
}

// fill enqueues n 256-byte jobs through the batch endpoint.
func fill(t testing.TB, base string, n int) {
	t.Helper()
	line := []byte(`{"payload_b64":"` + strings.Repeat("QUFB", 85) + `QQ=="}` + "\n") // 256 bytes
	body := bytes.Repeat(line, 1000)
	c := &http.Client{Timeout: time.Minute}
	refusals := 0
	for done := 0; done < n; {
		code, err := postNDJSON(context.Background(), c, base+"/v1/queues/backlog/batch", body)
		switch {
		case err == nil && code == 201:
			done += 1000
		case err == nil && (code == 429 || code == 503) && refusals < 120:
			// Refused for now (the governor sheds under memory pressure):
			// wait as a client would, and count it.
			refusals++
			time.Sleep(time.Second)
		default:
			t.Fatalf("batch at %d: %d %v (after %d refusals)", done, code, err, refusals)
		}
	}
	if refusals > 0 {
		t.Logf("fill of %d jobs: %d batches refused for now and retried", n, refusals)
	}
}

// settle samples pid's memory once a second, for at least 30 s (Badger's
// compactions go on after a fill, its pool of table builders then releases
// one every 2 s of idleness, and the daemon's trimmer returns free heap at
// most every 10 s), until VmRSS and RssAnon have each moved less than 1 MiB
// over the last five samples or 90 s passed, and returns the last sample.
func settle(b *testing.B, pid int) (vm, anon float64) {
	b.Helper()
	var vms, anons []float64
	for i := 0; i < 90; i++ {
		time.Sleep(time.Second)
		v, a, err := rss(pid)
		if err != nil {
			b.Fatal(err)
		}
		vms, anons = append(vms, v), append(anons, a)
		if n := len(vms); n >= 30 && spread(vms[n-5:]) < 1 && spread(anons[n-5:]) < 1 {
			b.Logf("settled after %d s: VmRSS %.1f MiB, RssAnon %.1f MiB (first sample %.1f / %.1f)", i+1, v, a, vms[0], anons[0])
			return v, a
		}
	}
	b.Logf("not settled after 90 s: VmRSS %v, RssAnon %v", vms, anons)
	return vms[len(vms)-1], anons[len(anons)-1]
}

func spread(xs []float64) float64 {
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	return hi - lo
}

// BenchmarkBacklogRSS measures the real daemon's resident memory idle and
// with a 30k and a 300k backlog of 256-byte jobs (small profile, the
// defaults), each once the daemon has settled after the fill (settle). SPEC 3: memory does not grow with the number of stored jobs.
// Run: go test -run '^$' -bench BacklogRSS -benchtime 1x ./e2e/
func BenchmarkBacklogRSS(b *testing.B) {
	// As systemd/edgeq.service runs it: GOMEMLIMIT=96MiB, below MemoryHigh.
	daemonEnv = []string{"GOMEMLIMIT=96MiB"}
	defer func() { daemonEnv = nil }()
	for b.Loop() {
		d := startDaemon(b, b.TempDir())
		vm, anon := settle(b, d.cmd.Process.Pid)
		b.ReportMetric(vm, "idle-rss-MiB")
		b.ReportMetric(anon, "idle-anon-MiB")
		fill(b, d.base, 30000)
		vm, anon = settle(b, d.cmd.Process.Pid)
		b.ReportMetric(vm, "30k-rss-MiB")
		b.ReportMetric(anon, "30k-anon-MiB")
		fill(b, d.base, 270000)
		vm, anon = settle(b, d.cmd.Process.Pid)
		b.ReportMetric(vm, "300k-rss-MiB")
		b.ReportMetric(anon, "300k-anon-MiB")
		d.kill()
	}
}
