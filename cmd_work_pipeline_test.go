package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeq/edgeq/transport/httpapi"
)

// pathLog is a reverse proxy in front of a daemon that records the paths
// of the requests it passes on (a lease that carries acks as "PATH with
// acks").
type pathLog struct {
	mu    sync.Mutex
	paths []string // guarded by mu
}

func (p *pathLog) list() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.paths)
}

// proxy starts a recording reverse proxy on 127.0.0.1 to the daemon at addr
// and answers its address.
func proxy(t *testing.T, addr string) (string, *pathLog) {
	t.Helper()
	target, err := url.Parse("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	pl := &pathLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if strings.HasSuffix(p, "/lease") && r.ContentLength > 0 {
			p += " with acks"
		}
		pl.mu.Lock()
		pl.paths = append(pl.paths, p)
		pl.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), pl
}

// gateScript marks that it started, waits (at most 10s) for a file "go"
// in the directory $1, then records its job's id in $1/runs.
const gateScript = `touch "$1/started-$EDGEQ_JOB_ID"
i=0
while [ ! -e "$1/go" ] && [ $i -lt 500 ]; do sleep 0.02; i=$((i+1)); done
echo "$EDGEQ_JOB_ID" >> "$1/runs"`

func startedCount(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "started-*"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// TestWorkPipelines (issue 16 target 5): with --concurrency 1 the worker
// leases the next job while the command runs (the queue shows two leased)
// but runs one at a time; its acks ride on its next lease requests (one
// request and one commit for both); every job runs once and is acked
// once.
func TestWorkPipelines(t *testing.T) {
	t.Parallel()
	addr := startDaemon(t)
	paddr, pl := proxy(t, addr)
	cl := httpapi.NewClient("http://"+addr, "", nil)
	defer cl.CloseIdleConnections()
	dir := t.TempDir()
	ids := enqueueN(t, addr, "ahead", "a", "b", "c", "d", "e", "f")
	stop := startWork(t, paddr, "ahead", "--wait", "200ms", "--", "sh", "-c", gateScript, "sh", dir)
	eventually(t, 10*time.Second, "first command started", func() bool { return startedCount(t, dir) == 1 })
	eventually(t, 5*time.Second, "next job leased while the command runs", func() bool {
		q, err := cl.Queue(t.Context(), "ahead")
		return err == nil && q.Leased == 2
	})
	if n := startedCount(t, dir); n != 1 {
		t.Fatalf("%d commands started with --concurrency 1, want 1", n)
	}
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "all jobs acked", func() bool {
		q, err := cl.Queue(t.Context(), "ahead")
		return err == nil && q.CompletedTotal == uint64(len(ids))
	})
	r := stop()
	if r.code != 0 {
		t.Errorf("work exited %d: %s", r.code, r.stderr)
	}
	b, err := os.ReadFile(filepath.Join(dir, "runs"))
	if err != nil {
		t.Fatal(err)
	}
	runs := strings.Fields(string(b))
	slices.Sort(runs)
	if want := slices.Sorted(slices.Values(ids)); !slices.Equal(runs, want) {
		t.Errorf("commands ran for %v, want each of %v once", runs, want)
	}
	q, err := cl.Queue(t.Context(), "ahead")
	if err != nil || q.CompletedTotal != uint64(len(ids)) || q.RetriedTotal != 0 || q.Leased != 0 || q.Ready != 0 {
		t.Errorf("queue stats %+v, %v: want %d completed, none retried or left", q, err, len(ids))
	}
	// Only the jobs that end while the worker long-polls an empty queue
	// (its answer would wait for the poll), at most the 2 it holds, are
	// acked alone.
	rides, alone := 0, 0
	for _, p := range pl.list() {
		switch {
		case strings.HasSuffix(p, "/lease with acks"):
			rides++
		case strings.HasSuffix(p, "/ack"), p == "/v1/acks":
			alone++
		}
	}
	if rides < 2 || alone > 2 {
		t.Errorf("%d lease requests with acks and %d acks alone among %v, want at least 2 and at most 2", rides, alone, pl.list())
	}
}

// TestWorkReleasesLeasedAhead: at shutdown a job leased ahead, whose
// command never started, is released at once with the running one, and
// --prefetch 0 leases nothing ahead.
func TestWorkReleasesLeasedAhead(t *testing.T) {
	t.Parallel()
	addr := startDaemon(t)
	cl := httpapi.NewClient("http://"+addr, "", nil)
	defer cl.CloseIdleConnections()
	dir := t.TempDir()
	ids := enqueueN(t, addr, "held2", "a", "b", "c")
	stop := startWork(t, addr, "held2", "--ttr", "1m", "--grace", "300ms", "--wait", "200ms", "--", "sh", "-c", gateScript, "sh", dir)
	eventually(t, 10*time.Second, "next job leased while the command runs", func() bool {
		q, err := cl.Queue(t.Context(), "held2")
		return err == nil && q.Leased == 2 && startedCount(t, dir) == 1
	})
	if r := stop(); r.code != 0 {
		t.Errorf("work exited %d: %s", r.code, r.stderr)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	jobs, err := cl.Lease(ctx, "held2", 3, time.Second, 0)
	if err != nil || len(jobs) != len(ids) {
		t.Fatalf("lease after the worker stopped: %d jobs, %v; want all %d released", len(jobs), err, len(ids))
	}
	if n := startedCount(t, dir); n != 1 {
		t.Errorf("%d commands started, want 1", n)
	}

	enqueueN(t, addr, "noahead", "a", "b")
	dir = t.TempDir()
	stop = startWork(t, addr, "noahead", "--prefetch", "0", "--ttr", "1m", "--grace", "300ms", "--wait", "200ms", "--", "sh", "-c", gateScript, "sh", dir)
	eventually(t, 10*time.Second, "first command started", func() bool { return startedCount(t, dir) == 1 })
	q, err := cl.Queue(t.Context(), "noahead")
	if err != nil || q.Leased != 1 || q.Ready != 1 {
		t.Errorf("with --prefetch 0: %+v, %v; want one leased and one ready", q, err)
	}
	stop()
}
