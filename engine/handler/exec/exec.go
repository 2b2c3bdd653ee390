package exechandler

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// Defaults for the zero values of Config.
const (
	DefaultTimeout    = 30 * time.Second
	DefaultStderrTail = 2048
)

// KillGrace is how long a command's process group has between SIGTERM and
// SIGKILL, and how long Handle waits for stdin and stderr once the command
// has exited while something else still holds them open.
const KillGrace = time.Second

// ExitDataErr is the exit status (sysexits.h EX_DATAERR) with which a
// command says that its input is bad: the job goes dead at once.
const ExitDataErr = 65

// Config configures a Handler. Zero values mean the defaults.
type Config struct {
	// Command is the program and its arguments, run without a shell.
	// Required; Command[0] must not be empty. A name without a slash is
	// looked up in PATH by New; a relative path is taken relative to Dir.
	Command []string
	// Timeout bounds each run; at the timeout the whole process group is
	// killed. 0: DefaultTimeout.
	Timeout time.Duration
	// Env holds extra KEY=VALUE entries for the command's environment, which
	// otherwise has only PATH and the EDGEQ_* variables.
	Env []string
	// StderrTail is how many bytes of the end of stderr are kept for the
	// job's last_error. 0: DefaultStderrTail.
	StderrTail int
	// Dir is the working directory; "" is the daemon's.
	Dir string
	// Result is how many bytes of the start of stdout a run keeps as the
	// job's result (Outcome.Result, with Ack); 0: stdout is discarded.
	Result int
}

// Handler runs a job's command. It is safe for concurrent use.
type Handler struct {
	path    string   // absolute path of the program
	argv    []string // Config.Command, argv[0] as configured
	dir     string
	env     []string // PATH and Config.Env; the EDGEQ_* entries are added per job
	timeout time.Duration
	tail    int
	result  int
}

var _ engine.Handler = (*Handler)(nil)

// errTimeout is the cause of a run's context when its Timeout fires, which
// tells a timeout apart from the caller's cancellation.
var errTimeout = errors.New("exec handler timeout")

// New validates cfg and resolves the program, so that a missing or
// non-executable binary is reported when the configuration is loaded, not
// when the first job runs. Errors name the Config field.
func New(cfg Config) (*Handler, error) {
	if len(cfg.Command) == 0 {
		return nil, errors.New("command: required")
	}
	if cfg.Command[0] == "" {
		return nil, errors.New("command[0]: the program must not be empty")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("timeout: %v must not be negative", cfg.Timeout)
	}
	if cfg.StderrTail < 0 {
		return nil, fmt.Errorf("stderr_tail: %d must not be negative", cfg.StderrTail)
	}
	for i, arg := range cfg.Command {
		if strings.IndexByte(arg, 0) >= 0 {
			return nil, fmt.Errorf("command[%d]: contains a NUL byte", i)
		}
	}
	// The daemon's PATH is the one piece of its environment a command gets:
	// programs expect to find their tools. Config.Env may override it.
	env := []string{}
	if p := os.Getenv("PATH"); p != "" {
		env = append(env, "PATH="+p)
	}
	for i, kv := range cfg.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.IndexByte(kv, 0) >= 0 {
			return nil, fmt.Errorf("env[%d]: %q is not KEY=VALUE", i, kv)
		}
		if k == "EDGEQ_JOB_ID" || k == "EDGEQ_QUEUE" || k == "EDGEQ_ATTEMPT" {
			return nil, fmt.Errorf("env[%d]: %s is set by edgeq for each job", i, k)
		}
		env = append(env, kv)
	}
	if cfg.Dir != "" {
		fi, err := os.Stat(cfg.Dir)
		if err != nil {
			return nil, fmt.Errorf("dir: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("dir: %s is not a directory", cfg.Dir)
		}
	}
	path, err := resolve(cfg.Command[0], cfg.Dir)
	if err != nil {
		return nil, err
	}
	return &Handler{
		path:    path,
		argv:    append([]string(nil), cfg.Command...),
		dir:     cfg.Dir,
		env:     env,
		timeout: cmp.Or(cfg.Timeout, DefaultTimeout),
		tail:    cmp.Or(cfg.StderrTail, DefaultStderrTail),
		result:  cfg.Result,
	}, nil
}

// resolve finds the program as exec would at run time, and makes the path
// absolute so that the daemon's working directory no longer matters.
func resolve(name, dir string) (string, error) {
	p := name
	if strings.Contains(name, "/") && !filepath.IsAbs(name) && dir != "" {
		p = filepath.Join(dir, name)
	}
	path, err := exec.LookPath(p)
	if err != nil {
		// exec's errors name the program: exec: "x": executable file not found in $PATH.
		return "", fmt.Errorf("command[0]: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("command[0] %q: %w", name, err)
	}
	return abs, nil
}

// Handle runs the command for j and waits for it, its timeout or ctx,
// whichever comes first. When it returns, the command's process group has
// been sent SIGKILL and every goroutine os/exec started has ended.
func (h *Handler) Handle(ctx context.Context, j *job.Job) engine.Outcome {
	ctx, cancel := context.WithTimeoutCause(ctx, h.timeout, errTimeout)
	defer cancel()

	stderr := newTailBuffer(h.tail)
	cmd := exec.CommandContext(ctx, h.path)
	cmd.Args = h.argv
	cmd.Dir = h.dir
	cmd.Env = append(h.env[:len(h.env):len(h.env)],
		"EDGEQ_JOB_ID="+j.ID.String(),
		"EDGEQ_QUEUE="+j.Queue,
		"EDGEQ_ATTEMPT="+strconv.Itoa(j.Attempt),
	)
	if j.TraceParent != "" {
		cmd.Env = append(cmd.Env, "TRACEPARENT="+j.TraceParent)
		if j.TraceState != "" {
			cmd.Env = append(cmd.Env, "TRACESTATE="+j.TraceState)
		}
	}
	cmd.Stdin = bytes.NewReader(j.Payload)
	var stdout *headBuffer
	if h.result > 0 {
		stdout = &headBuffer{max: h.result}
		cmd.Stdout = stdout
	} // else /dev/null: discarded without a pipe or a goroutine
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// At the timeout or cancellation: SIGTERM to the group. After KillGrace
	// os/exec kills the leader and closes the pipes, so Wait cannot hang on
	// a pipe a grandchild holds; the group's SIGKILL follows Wait below.
	cmd.Cancel = func() error { return signalGroup(cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = KillGrace

	if err := cmd.Start(); err != nil {
		if ctx.Err() != nil {
			return h.interrupted(ctx, "")
		}
		return engine.Outcome{Verdict: engine.Retry, Error: "start: " + err.Error(), TargetFailed: true}
	}
	err := cmd.Wait()
	// Whatever the command left running in its group dies with it: a job's
	// processes never outlive the job. ESRCH (nothing left) is the usual case.
	_ = signalGroup(cmd.Process.Pid, syscall.SIGKILL)
	out := h.outcome(ctx, err, stderr.String())
	if out.Verdict == engine.Ack && stdout != nil {
		out.Result = string(stdout.buf)
	}
	return out
}

// outcome maps how the command ended to a verdict. Every failure but exit
// 65 is the target's as far as the circuit breaker goes: edgeq cannot tell
// a command that is broken (a missing library, a dead endpoint it calls)
// from one that failed on this job, and a command that says the job is bad
// exits 65. Breakers count such failures in a row across jobs, so one bad
// job among good ones never opens them.
func (h *Handler) outcome(ctx context.Context, err error, tail string) engine.Outcome {
	// ErrWaitDelay with nothing else wrong: the command exited 0 but
	// something it started held stderr or stdin open past KillGrace.
	if err == nil || errors.Is(err, exec.ErrWaitDelay) {
		return engine.Outcome{Verdict: engine.Ack}
	}
	// Once ctx is done, whatever the exit looks like (killed by our
	// signal, or a trap that exited 143) was caused by it.
	if ctx.Err() != nil {
		return h.interrupted(ctx, tail)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return engine.Outcome{Verdict: engine.Retry, Error: withTail("wait: "+err.Error(), tail), TargetFailed: true}
	}
	code := ee.ExitCode()
	if code < 0 { // killed by a signal that was not ours: OOM killer, a crash
		return engine.Outcome{Verdict: engine.Retry, Error: withTail(ee.ProcessState.String(), tail), TargetFailed: true}
	}
	text := withTail("exit status "+strconv.Itoa(code), tail)
	if code == ExitDataErr {
		return engine.Outcome{Verdict: engine.Dead, Error: text}
	}
	return engine.Outcome{Verdict: engine.Retry, Error: text, TargetFailed: true}
}

// interrupted is the outcome of a run cut short by its timeout or by ctx.
// A timeout counts towards the breaker (a hung command or the endpoint it
// waits on); a cancellation is shutdown, nobody's failure.
func (h *Handler) interrupted(ctx context.Context, tail string) engine.Outcome {
	cause := context.Cause(ctx)
	if errors.Is(cause, errTimeout) {
		return engine.Outcome{Verdict: engine.Retry, Error: withTail("timeout after "+h.timeout.String(), tail), TargetFailed: true}
	}
	return engine.Outcome{Verdict: engine.Retry, Error: withTail("interrupted: "+cause.Error(), tail)}
}

func withTail(text, tail string) string {
	if tail == "" {
		return text
	}
	return text + ": " + tail
}

// signalGroup sends sig to the process group led by pid, reporting a group
// that no longer exists as os.ErrProcessDone (which os/exec understands).
func signalGroup(pid int, sig syscall.Signal) error {
	if pid <= 0 {
		// kill(0) or kill(-(-1)) would signal edgeq's own group, or everything.
		return fmt.Errorf("signal process group %d: invalid pid", pid)
	}
	err := syscall.Kill(-pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}
