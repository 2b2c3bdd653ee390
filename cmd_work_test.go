package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/httpapi"
)

// startWork runs `edgeq work` in-process until the returned stop, which
// cancels it (as SIGTERM does) and returns what it did.
func startWork(t *testing.T, addr string, args ...string) (stop func() result) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr workOutput
	done := make(chan int, 1)
	go func() {
		e := env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, lookupEnv: mapEnv(nil)}
		done <- exitCode(run(ctx, append([]string{"edgeq", "work", "--addr", addr}, args...), e), &stderr)
	}()
	var once sync.Once
	var r result
	stop = func() result {
		once.Do(func() {
			cancel()
			select {
			case r.code = <-done:
			case <-time.After(15 * time.Second):
				t.Fatal("work did not stop within 15s of its cancellation")
			}
			r.stdout, r.stderr = stdout.String(), stderr.String()
		})
		return r
	}
	t.Cleanup(func() { stop() })
	return stop
}

// workOutput is a strings.Builder safe for the writes of several goroutines.
type workOutput struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *workOutput) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *workOutput) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// eventually polls cond every 20ms until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func showJob(t *testing.T, cl *httpapi.Client, id string) (httpapi.Job, bool) {
	t.Helper()
	j, err := cl.Job(t.Context(), id)
	if errors.Is(err, job.ErrNotFound) {
		return j, false
	}
	if err != nil {
		t.Fatalf("show %s: %v", id, err)
	}
	return j, true
}

const workScript = `p=$(cat)
case "$p" in
ok) exit 0 ;;
bad) echo "cannot parse" >&2; exit 65 ;;
*) echo "transient $EDGEQ_QUEUE $EDGEQ_ATTEMPT $EDGEQ_JOB_ID" >&2; exit 1 ;;
esac`

// TestWork runs the pull worker over three jobs: exit 0 acks, 65 sends
// the job dead, 1 retries it with stderr in last_error.
func TestWork(t *testing.T) {
	t.Parallel()
	addr := startDaemon(t)
	cl := httpapi.NewClient("http://"+addr, "", nil)
	defer cl.CloseIdleConnections()
	ids := enqueueN(t, addr, "w", "ok", "bad", "retry")
	stop := startWork(t, addr, "w", "--concurrency", "3", "--wait", "200ms", "--", "sh", "-c", workScript)

	eventually(t, 10*time.Second, "jobs handled", func() bool {
		_, okLeft := showJob(t, cl, ids[0])
		bad, _ := showJob(t, cl, ids[1])
		retry, _ := showJob(t, cl, ids[2])
		return !okLeft && bad.State == "dead" && retry.LastError != ""
	})
	bad, _ := showJob(t, cl, ids[1])
	if !strings.Contains(bad.LastError, "exit status 65") || !strings.Contains(bad.LastError, "cannot parse") {
		t.Errorf("dead job's last_error = %q", bad.LastError)
	}
	retry, _ := showJob(t, cl, ids[2])
	if want := "transient w 1 " + ids[2]; !strings.Contains(retry.LastError, "exit status 1") || !strings.Contains(retry.LastError, want) {
		t.Errorf("retried job's last_error = %q, want exit status 1 and %q", retry.LastError, want)
	}
	if retry.State == "dead" {
		t.Errorf("a job that exited 1 went dead: %+v", retry)
	}
	r := stop()
	if r.code != 0 {
		t.Errorf("work exited %d after its cancellation: %s", r.code, r.stderr)
	}
	if !regexp.MustCompile(ids[1] + `: dead after attempt 1 in \S+: exit status 65: cannot parse`).MatchString(r.stderr) {
		t.Errorf("work's log lacks the dead job:\n%s", r.stderr)
	}
}

// TestWorkExtendsLease runs a command for longer than its TTR: the worker
// extends the lease, so the job is acked and never handed out again.
func TestWorkExtendsLease(t *testing.T) {
	t.Parallel()
	addr := startDaemon(t)
	cl := httpapi.NewClient("http://"+addr, "", nil)
	defer cl.CloseIdleConnections()
	runs := filepath.Join(t.TempDir(), "runs")
	ids := enqueueN(t, addr, "slow", "x")
	// Two slots: a redelivered job would be run by the second one.
	startWork(t, addr, "slow", "--concurrency", "2", "--ttr", "2s", "--wait", "200ms", "--",
		"sh", "-c", `echo run >> "$1"; sleep 5`, "sh", runs)
	eventually(t, 15*time.Second, "job acked", func() bool {
		_, left := showJob(t, cl, ids[0])
		return !left
	})
	b, err := os.ReadFile(runs)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "run"); n != 1 {
		t.Errorf("the command ran %d times, want once (lease extended past its 2s TTR)", n)
	}
	q, err := cl.Queue(t.Context(), "slow")
	if err != nil || q.CompletedTotal != 1 || q.RetriedTotal != 0 {
		t.Errorf("queue stats %+v, %v: want one completed, none retried", q, err)
	}
}

// TestWorkShutdownReleases cancels a worker whose command outlives the
// grace period: the command is killed and its job is leasable at once.
func TestWorkShutdownReleases(t *testing.T) {
	t.Parallel()
	addr := startDaemon(t)
	cl := httpapi.NewClient("http://"+addr, "", nil)
	defer cl.CloseIdleConnections()
	started := filepath.Join(t.TempDir(), "started")
	ids := enqueueN(t, addr, "held", "x")
	stop := startWork(t, addr, "held", "--ttr", "1m", "--grace", "300ms", "--wait", "200ms", "--",
		"sh", "-c", `touch "$1"; sleep 30`, "sh", started)
	eventually(t, 10*time.Second, "command started", func() bool {
		_, err := os.Stat(started)
		return err == nil
	})
	t0 := time.Now()
	r := stop()
	if r.code != 0 {
		t.Errorf("work exited %d: %s", r.code, r.stderr)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("work took %s to stop with a 300ms grace", d)
	}
	// The lease had a minute to run: only the release makes it leasable now.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	jobs, err := cl.Lease(ctx, "held", 1, 2*time.Second, 0)
	if err != nil || len(jobs) != 1 || jobs[0].ID != ids[0] {
		t.Fatalf("lease after the worker stopped: %+v, %v; want the released job", jobs, err)
	}
	if !strings.Contains(jobs[0].LastError, "released") {
		t.Errorf("released job's last_error = %q", jobs[0].LastError)
	}
}

// TestWorkReports checks what the worker says: a start line naming the
// queue, the concurrency and the command; a line per failed job; a line
// per job with --verbose; and the same as JSON objects on stdout with
// --json.
func TestWorkReports(t *testing.T) {
	t.Parallel()
	addr := startDaemon(t)
	cl := httpapi.NewClient("http://"+addr, "", nil)
	defer cl.CloseIdleConnections()
	handled := func(ids []string) func() bool {
		return func() bool {
			_, okLeft := showJob(t, cl, ids[0])
			bad, _ := showJob(t, cl, ids[1])
			return !okLeft && bad.State == "dead"
		}
	}
	start := "edgeq work: leasing from %s with concurrency 2: sh -c " + strconv.Quote(workScript) + "\n"

	ids := enqueueN(t, addr, "quiet", "ok", "bad")
	stop := startWork(t, addr, "quiet", "-c", "2", "--wait", "200ms", "--", "sh", "-c", workScript)
	eventually(t, 10*time.Second, "jobs handled", handled(ids))
	r := stop()
	if !strings.HasPrefix(r.stderr, fmt.Sprintf(start, "quiet")) {
		t.Errorf("work's log does not start with the start line:\n%s", r.stderr)
	}
	if !regexp.MustCompile(`job `+ids[1]+`: dead after attempt 1 in \S+: exit status 65`).MatchString(r.stderr) || strings.Contains(r.stderr, ids[0]) {
		t.Errorf("without --verbose, want a line for the dead job only:\n%s", r.stderr)
	}

	ids = enqueueN(t, addr, "loud", "ok", "bad")
	stop = startWork(t, addr, "loud", "-c", "2", "--wait", "200ms", "--verbose", "--", "sh", "-c", workScript)
	eventually(t, 10*time.Second, "jobs handled", handled(ids))
	r = stop()
	if !regexp.MustCompile(`job `+ids[0]+`: done after attempt 1 in \d`).MatchString(r.stderr) ||
		!strings.Contains(r.stderr, "job "+ids[1]+": dead after attempt 1") {
		t.Errorf("with --verbose, want a line per job:\n%s", r.stderr)
	}

	ids = enqueueN(t, addr, "machine", "ok", "bad")
	stop = startWork(t, addr, "machine", "-c", "2", "--wait", "200ms", "--json", "--verbose", "--", "sh", "-c", workScript)
	eventually(t, 10*time.Second, "jobs handled", handled(ids))
	r = stop()
	var events []workEvent
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var ev workEvent
		decodeJSON(t, line, &ev)
		events = append(events, ev)
	}
	if len(events) != 3 || events[0].Event != "start" || events[0].Queue != "machine" || events[0].Concurrency != 2 ||
		!slices.Equal(events[0].Command, []string{"sh", "-c", workScript}) {
		t.Fatalf("work --json printed %q, want a start object and one object per job", r.stdout)
	}
	byID := map[string]workEvent{events[1].ID: events[1], events[2].ID: events[2]}
	if ev := byID[ids[0]]; ev.Event != "done" || ev.Attempt != 1 || ev.Queue != "machine" {
		t.Errorf("done job: %+v", ev)
	}
	if ev := byID[ids[1]]; ev.Event != "dead" || !strings.Contains(ev.Error, "cannot parse") {
		t.Errorf("dead job: %+v", ev)
	}
}

// TestAnswerErrorNamesTheJobOnce: a refusal from the daemon already names
// the job, so the worker's log line does not name it again (issue 13 item
// 10); a transport error, which does not, gets the id.
func TestAnswerErrorNamesTheJobOnce(t *testing.T) {
	const id = "00000000000000a1"
	refused := &httpapi.APIError{Status: 409, Code: "lease_lost", Message: "job " + id + ": lease lost"}
	if got := answerError(id, refused); strings.Count(got, id) != 1 {
		t.Errorf("refusal: %q names the job %d times, want once", got, strings.Count(got, id))
	}
	down := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	if got := answerError(id, down); strings.Count(got, id) != 1 {
		t.Errorf("transport error: %q names the job %d times, want once", got, strings.Count(got, id))
	}
}

// TestWorkResult (issue 20 item 4): with --result, the command's stdout is
// sent with the ack and kept by a queue with retain_done.
func TestWorkResult(t *testing.T) {
	t.Parallel()
	conf := filepath.Join(t.TempDir(), "edgeq.yaml")
	if err := os.WriteFile(conf, []byte("queues: {w: {retain_done: 1h}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := startDaemon(t, "--config", conf)
	cl := httpapi.NewClient("http://"+addr, "", nil)
	defer cl.CloseIdleConnections()
	ids := enqueueN(t, addr, "w", "7")
	startWork(t, addr, "w", "--result", "--wait", "200ms", "--", "sh", "-c", `printf '{"square":%d}' $(( $(cat) * 7 ))`)
	var j httpapi.Job
	eventually(t, 10*time.Second, "job done", func() bool {
		j, _ = showJob(t, cl, ids[0])
		return j.State == "done"
	})
	if string(j.Result) != `{"square":49}` {
		t.Errorf("result = %s (b64 %q), want {\"square\":49}", j.Result, j.ResultB64)
	}
}
