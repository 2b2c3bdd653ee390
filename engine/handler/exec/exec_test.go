package exechandler

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

func testJob(payload string) *job.Job {
	return &job.Job{ID: 0xff, Queue: "q", Attempt: 2, Payload: []byte(payload)}
}

func mustNew(t *testing.T, cfg Config) *Handler {
	t.Helper()
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return h
}

// readPID reads the pid a script wrote to path.
func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		t.Fatalf("pid file holds %q: %v", b, err)
	}
	return pid
}

// waitPIDFile waits, a bounded time, for a script to write its pid file.
func waitPIDFile(t *testing.T, path string) int {
	t.Helper()
	for range 200 {
		if b, err := os.ReadFile(path); err == nil && bytes.HasSuffix(b, []byte("\n")) {
			return readPID(t, path)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no pid file at %s after 2s", path)
	return 0
}

// alive reports whether pid is a live process. A zombie is dead: it is
// only waiting for whoever adopted it (init, or the container's pid 1) to
// reap it.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	fields := strings.Fields(string(b[i+1:]))
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

// assertGone waits up to 2s for an external process to die: the one place
// a test waits on something other than a goroutine.
func assertGone(t *testing.T, pid int) {
	t.Helper()
	for range 200 {
		if !alive(pid) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("process %d survived its job", pid)
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // "" for success
	}{
		{name: "absolute", cfg: Config{Command: []string{"/bin/sh"}}},
		{name: "looked up in PATH", cfg: Config{Command: []string{"sh", "-c", "true"}}},
		{name: "all fields", cfg: Config{Command: sh("true"), Timeout: time.Second, Env: []string{"A=b", "EMPTY="}, StderrTail: 10, Dir: dir}},
		{name: "no command", cfg: Config{}, wantErr: "command: required"},
		{name: "empty program", cfg: Config{Command: []string{"", "x"}}, wantErr: "command[0]: the program must not be empty"},
		{name: "missing binary", cfg: Config{Command: []string{"edgeq-no-such-binary"}}, wantErr: `command[0]: exec: "edgeq-no-such-binary": executable file not found`},
		{name: "missing path", cfg: Config{Command: []string{"/nonexistent/edgeq-tool"}}, wantErr: `command[0]: exec: "/nonexistent/edgeq-tool"`},
		{name: "not executable", cfg: Config{Command: []string{file}}, wantErr: "permission denied"},
		{name: "relative to dir", cfg: Config{Command: []string{"./file"}, Dir: dir}, wantErr: "file"},
		{name: "nul in argument", cfg: Config{Command: []string{"/bin/sh", "a\x00b"}}, wantErr: "command[1]: contains a NUL byte"},
		{name: "negative timeout", cfg: Config{Command: sh("true"), Timeout: -time.Second}, wantErr: "timeout: -1s must not be negative"},
		{name: "negative tail", cfg: Config{Command: sh("true"), StderrTail: -1}, wantErr: "stderr_tail: -1 must not be negative"},
		{name: "env without =", cfg: Config{Command: sh("true"), Env: []string{"A=b", "NOPE"}}, wantErr: `env[1]: "NOPE" is not KEY=VALUE`},
		{name: "env without key", cfg: Config{Command: sh("true"), Env: []string{"=x"}}, wantErr: `env[0]: "=x" is not KEY=VALUE`},
		{name: "env sets job id", cfg: Config{Command: sh("true"), Env: []string{"EDGEQ_JOB_ID=1"}}, wantErr: "env[0]: EDGEQ_JOB_ID is set by edgeq"},
		{name: "missing dir", cfg: Config{Command: sh("true"), Dir: filepath.Join(dir, "nope")}, wantErr: "dir: stat"},
		{name: "dir is a file", cfg: Config{Command: sh("true"), Dir: file}, wantErr: "is not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil || h == nil {
					t.Fatalf("New() = %v, %v; want a handler", h, err)
				}
				if !filepath.IsAbs(h.path) {
					t.Errorf("program resolved to %q, want an absolute path", h.path)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New() error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestHandleExitStatus(t *testing.T) {
	t.Setenv("EDGEQ_TEST_SECRET", "leak") // must not reach the command
	// The script acks only if it sees the payload on stdin and exactly the
	// environment it should; otherwise it says what was wrong on stderr.
	const checkEnv = `
in=$(cat)
[ "$in" = "hello" ] || { echo "stdin: $in" >&2; exit 1; }
[ "$EDGEQ_JOB_ID" = 00000000000000ff ] || { echo "id: $EDGEQ_JOB_ID" >&2; exit 1; }
[ "$EDGEQ_QUEUE" = q ] || { echo "queue: $EDGEQ_QUEUE" >&2; exit 1; }
[ "$EDGEQ_ATTEMPT" = 2 ] || { echo "attempt: $EDGEQ_ATTEMPT" >&2; exit 1; }
[ "$EXTRA" = "a=b" ] || { echo "extra: $EXTRA" >&2; exit 1; }
[ -n "$PATH" ] || { echo "no PATH" >&2; exit 1; }
[ -z "$EDGEQ_TEST_SECRET" ] || { echo "inherited the environment" >&2; exit 1; }
[ "$(pwd)" = "$WANT_DIR" ] || { echo "dir: $(pwd)" >&2; exit 1; }
[ "$0" = "/bin/sh" ] || { echo "argv0: $0" >&2; exit 1; }
echo "stdout is discarded"
exit 0`
	dir := t.TempDir()
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		script  string
		payload string
		want    engine.Outcome
	}{
		{name: "ack", script: checkEnv, payload: "hello", want: engine.Outcome{Verdict: engine.Ack}},
		{name: "ack sees wrong stdin", script: checkEnv, payload: "bye", want: engine.Outcome{Verdict: engine.Retry, Error: "exit status 1: stdin: bye", TargetFailed: true}},
		{name: "dead", script: "echo 'bad payload' >&2; exit 65", want: engine.Outcome{Verdict: engine.Dead, Error: "exit status 65: bad payload"}},
		{name: "retry", script: "echo 'line 1' >&2; echo 'try later' >&2; exit 1", want: engine.Outcome{Verdict: engine.Retry, Error: "exit status 1: line 1\ntry later", TargetFailed: true}},
		{name: "retry without stderr", script: "exit 75", want: engine.Outcome{Verdict: engine.Retry, Error: "exit status 75", TargetFailed: true}},
		{name: "killed by a signal", script: "echo dying >&2; kill -USR1 $$", want: engine.Outcome{Verdict: engine.Retry, Error: "signal: user defined signal 1: dying", TargetFailed: true}},
		{name: "unread payload", script: "exit 0", payload: strings.Repeat("x", 1<<20), want: engine.Outcome{Verdict: engine.Ack}},
		{name: "whole payload read", script: `[ $(wc -c) -eq 1048576 ] || exit 1`, payload: strings.Repeat("x", 1<<20), want: engine.Outcome{Verdict: engine.Ack}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := mustNew(t, Config{Command: sh(tt.script), Env: []string{"EXTRA=a=b", "WANT_DIR=" + dir}, Dir: dir})
			if got := h.Handle(t.Context(), testJob(tt.payload)); got != tt.want {
				t.Errorf("Handle() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestHandleHugeStderr(t *testing.T) {
	h := mustNew(t, Config{Command: sh(`head -c 10000000 /dev/zero | tr '\0' x >&2; echo END >&2; exit 3`)})
	got := h.Handle(t.Context(), testJob(""))
	if got.Verdict != engine.Retry || !got.TargetFailed {
		t.Errorf("Handle() = %+v, want a Retry with TargetFailed", got)
	}
	const prefix = "exit status 3: ..."
	if !strings.HasPrefix(got.Error, prefix) || !strings.HasSuffix(got.Error, "xxxEND") {
		t.Errorf("Error = %.40q...%q, want %q...xxxEND", got.Error, got.Error[max(0, len(got.Error)-10):], prefix)
	}
	if max := len(prefix) + DefaultStderrTail; len(got.Error) > max {
		t.Errorf("len(Error) = %d, want at most %d", len(got.Error), max)
	}
}

func TestHandleStderrTail(t *testing.T) {
	h := mustNew(t, Config{Command: sh(`echo 0123456789 >&2; exit 1`), StderrTail: 5})
	want := engine.Outcome{Verdict: engine.Retry, Error: "exit status 1: ...6789", TargetFailed: true} // kept "6789\n"
	if got := h.Handle(t.Context(), testJob("")); got != want {
		t.Errorf("Handle() = %+v, want %+v", got, want)
	}
}

func TestHandleStartFailure(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "prog")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := mustNew(t, Config{Command: []string{prog}})
	if err := os.Remove(prog); err != nil { // gone after New: the job cannot start
		t.Fatal(err)
	}
	got := h.Handle(t.Context(), testJob(""))
	if got.Verdict != engine.Retry || !got.TargetFailed || !strings.HasPrefix(got.Error, "start: ") {
		t.Errorf("Handle() = %+v, want a Retry with TargetFailed and a start error", got)
	}
}

func TestHandleTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	h := mustNew(t, Config{
		Command: sh(`echo working >&2; sleep 300 & echo $! > "$PIDFILE"; wait`),
		Env:     []string{"PIDFILE=" + pidFile},
		Timeout: 300 * time.Millisecond,
	})
	start := time.Now()
	got := h.Handle(t.Context(), testJob(""))
	want := engine.Outcome{Verdict: engine.Retry, Error: "timeout after 300ms: working", TargetFailed: true}
	if got != want {
		t.Errorf("Handle() = %+v, want %+v", got, want)
	}
	if d := time.Since(start); d > 300*time.Millisecond+KillGrace+time.Second {
		t.Errorf("Handle took %v, want about the timeout", d)
	}
	assertGone(t, readPID(t, pidFile))
}

// A command that ignores SIGTERM gets SIGKILL after KillGrace, and so does
// its grandchild, which inherits the ignored signal and holds stderr open.
func TestHandleTimeoutIgnoringSIGTERM(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	h := mustNew(t, Config{
		Command: sh(`trap '' TERM; sleep 300 & echo $! > "$PIDFILE"; wait; wait; wait`),
		Env:     []string{"PIDFILE=" + pidFile},
		Timeout: 100 * time.Millisecond,
	})
	got := h.Handle(t.Context(), testJob(""))
	if got.Verdict != engine.Retry || !got.TargetFailed || !strings.HasPrefix(got.Error, "timeout after 100ms") {
		t.Errorf("Handle() = %+v, want a timeout Retry", got)
	}
	assertGone(t, readPID(t, pidFile))
}

func TestHandleCancelKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	h := mustNew(t, Config{
		Command: sh(`sleep 300 & echo $! > "$PIDFILE"; wait`),
		Env:     []string{"PIDFILE=" + pidFile},
		Timeout: time.Minute,
	})
	ctx, cancel := context.WithCancel(t.Context())
	var got engine.Outcome
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() }) // also when waitPIDFile fails
	wg.Go(func() { got = h.Handle(ctx, testJob("")) })

	pid := waitPIDFile(t, pidFile)
	cancel()
	wg.Wait()
	want := engine.Outcome{Verdict: engine.Retry, Error: "interrupted: context canceled"}
	if got != want {
		t.Errorf("Handle() = %+v, want %+v", got, want)
	}
	assertGone(t, pid)
}

func TestHandleCancelledBeforeStart(t *testing.T) {
	h := mustNew(t, Config{Command: sh("exit 0")})
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(errors.New("shutting down"))
	want := engine.Outcome{Verdict: engine.Retry, Error: "interrupted: shutting down"}
	if got := h.Handle(ctx, testJob("")); got != want {
		t.Errorf("Handle() = %+v, want %+v", got, want)
	}
}

// A command that exits 0 but leaves a process behind holding stderr: the job
// is acked within KillGrace and the straggler is killed with the group.
func TestHandleAckKillsLeftovers(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	h := mustNew(t, Config{
		Command: sh(`sleep 300 & echo $! > "$PIDFILE"; exit 0`),
		Env:     []string{"PIDFILE=" + pidFile},
		Timeout: time.Minute,
	})
	start := time.Now()
	if got := h.Handle(t.Context(), testJob("")); got != (engine.Outcome{Verdict: engine.Ack}) {
		t.Errorf("Handle() = %+v, want Ack", got)
	}
	if d := time.Since(start); d > KillGrace+5*time.Second {
		t.Errorf("Handle took %v, want about KillGrace (%v)", d, KillGrace)
	}
	assertGone(t, readPID(t, pidFile))
}

func TestHandleConcurrent(t *testing.T) {
	h := mustNew(t, Config{Command: sh(`[ "$(cat)" = "job $EDGEQ_ATTEMPT" ] || exit 1`)})
	var wg sync.WaitGroup
	errs := make([]engine.Outcome, 8)
	for i := range errs {
		wg.Go(func() {
			j := testJob("job " + strconv.Itoa(i))
			j.Attempt = i
			errs[i] = h.Handle(t.Context(), j)
		})
	}
	wg.Wait()
	for i, got := range errs {
		if got.Verdict != engine.Ack {
			t.Errorf("job %d: Handle() = %+v, want Ack", i, got)
		}
	}
}

// TestHandleResult: with Result set, the start of stdout is the outcome's
// result, however much more the command writes; without it, stdout goes
// nowhere.
func TestHandleResult(t *testing.T) {
	full := "converted\n" + string(make([]byte, 1<<10-len("converted\n")))
	for _, tc := range []struct {
		result int
		want   string
	}{{0, ""}, {5, "conve"}, {1 << 10, full}} {
		h := mustNew(t, Config{Command: sh("cat >/dev/null; echo converted; head -c 100000 /dev/zero"), Result: tc.result})
		out := h.Handle(t.Context(), testJob("in"))
		if out.Verdict != engine.Ack || out.Result != tc.want {
			t.Errorf("Result %d: Handle() = verdict %v, result %d bytes %.12q; want Ack, %d bytes %.12q", tc.result, out.Verdict, len(out.Result), out.Result, len(tc.want), tc.want)
		}
	}
}
