package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The unit's paths, replaced by the test's own binary and files.
const (
	unitBinary = "/usr/bin/edgeq"
	unitConfig = "/etc/edgeq/edgeq.yaml"
)

// serviceDirectives reads the [Service] section of systemd/edgeq.service:
// key → values in file order.
func serviceDirectives(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "systemd", "edgeq.service"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	service := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
		case section == "Service":
			k, v, _ := strings.Cut(line, "=")
			service[k] = append(service[k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return service
}

// exitStatus is how a process of the unit ended: an exit code, or the
// signal that killed it.
type exitStatus struct {
	code   int
	signal syscall.Signal // 0 when it exited
}

func (s exitStatus) String() string {
	if s.signal != 0 {
		return "killed by " + s.signal.String()
	}
	return "exit " + strconv.Itoa(s.code)
}

// statusSet parses a list of exit statuses as RestartPreventExitStatus=
// takes them: numbers and signal names, separated by spaces; an empty
// assignment resets the list.
func statusSet(values []string) (codes map[int]bool, signals map[string]bool) {
	codes, signals = map[int]bool{}, map[string]bool{}
	for _, v := range values {
		if strings.TrimSpace(v) == "" {
			codes, signals = map[int]bool{}, map[string]bool{}
		}
		for _, f := range strings.Fields(v) {
			if n, err := strconv.Atoi(f); err == nil {
				codes[n] = true
			} else {
				signals[strings.TrimPrefix(f, "SIG")] = true
			}
		}
	}
	return codes, signals
}

// restarts is systemd's decision (systemd.service(5)) for the unit's
// Restart=, RestartPreventExitStatus=, RestartForceExitStatus= and
// SuccessExitStatus= after its start failed in a control process
// (ExecStartPre=) or its main process ended. RestartPreventExitStatus= and
// RestartForceExitStatus= apply to the main process only: a failing
// ExecStartPre= is restarted whatever its status (systemd issue 11868).
func restarts(t *testing.T, service map[string][]string, s exitStatus, mainProcess bool) bool {
	t.Helper()
	last := func(k string) string {
		vs := service[k]
		if len(vs) == 0 {
			return ""
		}
		return vs[len(vs)-1]
	}
	in := func(key string) bool {
		codes, signals := statusSet(service[key])
		if s.signal != 0 {
			return signals[strings.TrimPrefix(unix.SignalName(s.signal), "SIG")]
		}
		return codes[s.code]
	}
	if mainProcess && in("RestartPreventExitStatus") {
		return false
	}
	if mainProcess && in("RestartForceExitStatus") {
		return true
	}
	// SIGHUP, SIGINT, SIGTERM and SIGPIPE are clean ends of a service.
	clean := in("SuccessExitStatus") || s == exitStatus{} ||
		slices.Contains([]syscall.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE}, s.signal)
	switch r := last("Restart"); r {
	case "", "no":
		return false
	case "always":
		return true
	case "on-failure":
		return !clean
	case "on-abnormal", "on-abort":
		return s.signal != 0 && !clean
	default:
		t.Fatalf("Restart=%s: not modelled by this test", r)
		return false
	}
}

// unitCommand is one of the unit's command lines with the test's binary and
// configuration file in place of the installed ones. ignoreFailure is the
// "-" prefix: systemd does not treat the command's failure as the unit's.
func unitCommand(t *testing.T, line, config string) (cmd *exec.Cmd, ignoreFailure bool) {
	t.Helper()
	ignoreFailure = strings.HasPrefix(line, "-")
	line = strings.TrimLeft(line, "-@:+!")
	args := strings.Fields(line)
	if len(args) == 0 || args[0] != unitBinary {
		return nil, ignoreFailure
	}
	for i, a := range args {
		if a == unitConfig {
			args[i] = config
		}
	}
	cmd = exec.Command(binary(t), args[1:]...)
	// The unit's StateDirectory=; no other variables from this test's environment.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "STATE_DIRECTORY=" + t.TempDir()}
	return cmd, ignoreFailure
}

func status(t *testing.T, err error) exitStatus {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return exitStatus{}
	case errors.As(err, &ee):
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return exitStatus{signal: ws.Signal()}
		}
		return exitStatus{code: ws.ExitStatus()}
	}
	t.Fatal(err)
	return exitStatus{}
}

// startUnit runs the unit's ExecStartPre= lines and then its ExecStart= as
// systemd would, with config in place of /etc/edgeq/edgeq.yaml. A failing
// ExecStartPre= without "-" ends the start there: it answers that status and
// mainProcess false. Otherwise it answers the running main process.
func startUnit(t *testing.T, service map[string][]string, config string) (main *exec.Cmd, log *syncBuffer, failed exitStatus, mainProcess bool) {
	t.Helper()
	for _, line := range service["ExecStartPre"] {
		cmd, ignore := unitCommand(t, line, config)
		if cmd == nil {
			continue
		}
		out, err := cmd.CombinedOutput()
		if s := status(t, err); s != (exitStatus{}) && !ignore {
			t.Logf("ExecStartPre=%s: %s\n%s", line, s, out)
			return nil, nil, s, false
		}
	}
	lines := service["ExecStart"]
	if len(lines) != 1 {
		t.Fatalf("ExecStart=%q: want one command", lines)
	}
	main, _ = unitCommand(t, lines[0], config)
	if main == nil {
		t.Fatalf("ExecStart=%s: does not run %s", lines[0], unitBinary)
	}
	log = new(syncBuffer)
	main.Stdout, main.Stderr = log, log
	if err := main.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if main.ProcessState == nil {
			main.Process.Kill()
			main.Wait()
		}
	})
	return main, log, exitStatus{}, true
}

// wait waits up to 30 s for the main process to end and answers how.
func wait(t *testing.T, cmd *exec.Cmd, log *syncBuffer) exitStatus {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return status(t, err)
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("no exit within 30s:\n%s", log)
		return exitStatus{}
	}
}

// TestUnitRestartLogic runs the real binary as systemd/edgeq.service would
// and applies systemd's restart rules to the unit's own directives: a crash
// (the Go runtime exits 2 on a panic, a fatal error, and the SIGABRT the
// watchdog sends) and a store that does not open are restarted; an invalid
// configuration (exit 78) and a clean stop are not.
func TestUnitRestartLogic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped in -short")
	}
	service := serviceDirectives(t)
	dir := t.TempDir()
	write := func(name, s string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := func() string {
		return write("good.yaml", fmt.Sprintf("http: {addr: %q}\ndata_dir: %s\nshutdown_timeout: 5s\n",
			freePort(t), filepath.Join(t.TempDir(), "data")))
	}

	t.Run("invalid configuration is not restarted", func(t *testing.T) {
		bad := write("bad.yaml", "queues:\n  sync: {class: urgent}\n")
		cmd, log, s, mainProcess := startUnit(t, service, bad)
		if mainProcess {
			s = wait(t, cmd, log)
			if s.code != 78 || !strings.Contains(log.String(), `queues.sync.class: unknown class "urgent"`) {
				t.Errorf("serve on an invalid file: %s, want exit 78 naming the key:\n%s", s, log)
			}
		}
		if restarts(t, service, s, mainProcess) {
			t.Errorf("an invalid configuration (%s, main process %v) is restarted: systemd would try it again every RestartSec= forever", s, mainProcess)
		}
	})

	t.Run("missing token file is not restarted", func(t *testing.T) {
		conf := write("token.yaml", fmt.Sprintf("http: {addr: %q, token_file: %s}\n", freePort(t), filepath.Join(dir, "no-token")))
		cmd, log, s, mainProcess := startUnit(t, service, conf)
		if mainProcess {
			s = wait(t, cmd, log)
		}
		if s.code != 78 || restarts(t, service, s, mainProcess) {
			t.Errorf("a configuration naming a missing token file: %s (main process %v), want exit 78 and no restart", s, mainProcess)
		}
	})

	for _, sig := range []syscall.Signal{syscall.SIGABRT, syscall.SIGQUIT} {
		t.Run("crash on "+unix.SignalName(sig)+" is restarted", func(t *testing.T) {
			cmd, log, s, mainProcess := startUnit(t, service, good())
			if !mainProcess {
				t.Fatalf("a valid configuration failed to start: %s", s)
			}
			waitListening(t, log)
			// The Go runtime dumps every goroutine and exits 2, as on an
			// unrecovered panic or a fatal runtime error.
			cmd.Process.Signal(sig)
			s = wait(t, cmd, log)
			if s.code != 2 {
				t.Fatalf("after %s: %s, want the Go runtime's crash exit 2", unix.SignalName(sig), s)
			}
			if !restarts(t, service, s, true) {
				t.Errorf("a crash (%s) is not restarted", s)
			}
		})
	}

	t.Run("clean stop is not restarted", func(t *testing.T) {
		cmd, log, s, mainProcess := startUnit(t, service, good())
		if !mainProcess {
			t.Fatalf("a valid configuration failed to start: %s", s)
		}
		waitListening(t, log)
		cmd.Process.Signal(syscall.SIGTERM)
		if s = wait(t, cmd, log); s.code != 0 || restarts(t, service, s, true) {
			t.Errorf("SIGTERM: %s, want exit 0 and no restart:\n%s", s, log)
		}
	})

	t.Run("store that does not open is restarted", func(t *testing.T) {
		notDir := write("not-a-dir", "")
		conf := write("store.yaml", fmt.Sprintf("http: {addr: %q}\ndata_dir: %s\n", freePort(t), notDir))
		cmd, log, s, mainProcess := startUnit(t, service, conf)
		if !mainProcess {
			t.Fatalf("a valid configuration failed to start: %s", s)
		}
		if s = wait(t, cmd, log); s.code != 1 || !restarts(t, service, s, true) {
			t.Errorf("a data_dir that is a file: %s, want exit 1 and a restart (the disk may come back):\n%s", s, log)
		}
	})
}

// waitListening waits up to 20 s for the daemon's "listening" log line.
func waitListening(t *testing.T, log *syncBuffer) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(log.String(), "msg=listening"); {
		if time.Now().After(deadline) {
			t.Fatalf("no listening line within 20s:\n%s", log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
