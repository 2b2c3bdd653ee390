package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the edgeq binary once per test run.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "edgeq-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "edgeq")
		out, err := exec.Command("go", "build", "-o", binPath, "..").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// syncBuffer is a bytes.Buffer that a test may read while the process
// writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// daemonEnv is added to the environment of daemons the tests start.
var daemonEnv []string

// daemon is a running edgeq serve process.
type daemon struct {
	t    testing.TB
	cmd  *exec.Cmd
	addr string // host:port
	base string // http://host:port
	log  *syncBuffer
	done chan struct{}
}

// freePort asks the kernel for a free loopback port.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// startDaemon runs `edgeq serve` on dataDir with extra args and waits until
// /healthz answers.
func startDaemon(t testing.TB, dataDir string, args ...string) *daemon {
	t.Helper()
	return startDaemonBin(t, binary(t), dataDir, args...)
}

// startTimeout bounds a daemon's start in the tests. A start takes well
// under a second on an idle host; a CI host at a load of 30 (and a store on
// the tests' own FUSE file system, served by the race-instrumented test
// process) has taken over 20s.
const startTimeout = 60 * time.Second

// startDaemonBin is startDaemon with another build of edgeq (bin).
func startDaemonBin(t testing.TB, bin, dataDir string, args ...string) *daemon {
	t.Helper()
	d := spawnDaemonBin(t, bin, dataDir, args...)
	start := time.Now()
	if !d.waitHealthy(startTimeout) {
		select {
		case <-d.done:
			t.Fatalf("edgeq exited at start:\n%s", d.log)
		default:
			t.Fatalf("edgeq did not answer /healthz within %v:\n%s", startTimeout, d.log)
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Logf("edgeq took %v to answer /healthz (a loaded host?)", took.Round(time.Millisecond))
	}
	return d
}

// waitHealthy polls /healthz until it answers 200 (true), the process exits
// or the timeout passes (false).
func (d *daemon) waitHealthy(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get(d.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return true
			}
		}
		select {
		case <-d.done:
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	return false
}

// spawnDaemon starts `edgeq serve` without waiting for it.
func spawnDaemon(t testing.TB, dataDir string, args ...string) *daemon {
	t.Helper()
	return spawnDaemonBin(t, binary(t), dataDir, args...)
}

func spawnDaemonBin(t testing.TB, bin, dataDir string, args ...string) *daemon {
	t.Helper()
	addr := freePort(t)
	all := append([]string{"serve", "--data-dir", dataDir, "--http-addr", addr}, args...)
	cmd := exec.Command(bin, all...)
	cmd.Env = append(os.Environ(), daemonEnv...)
	d := &daemon{t: t, cmd: cmd, addr: addr, base: "http://" + addr, log: new(syncBuffer), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = d.log, d.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(d.done) }()
	t.Cleanup(func() { d.kill() })
	return d
}

// kill sends SIGKILL and waits for the process.
func (d *daemon) kill() {
	select {
	case <-d.done:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
}

// term sends SIGTERM and waits up to 30s for a clean exit.
func (d *daemon) term() error {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		if code := d.cmd.ProcessState.ExitCode(); code != 0 {
			return fmt.Errorf("exit code %d", code)
		}
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("no exit 30s after SIGTERM")
	}
}

type apiJob struct {
	ID      string          `json:"id"`
	Attempt int             `json:"attempt"`
	Payload json.RawMessage `json:"payload"`
	B64     string          `json:"payload_b64"`
	Lease   *struct {
		ID string `json:"id"`
	} `json:"lease"`
}

// call does one request, as application/json when the body is JSON, and
// decodes a JSON answer into out (when non-nil).
func call(ctx context.Context, c *http.Client, method, url string, body []byte, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	if json.Valid(body) {
		req.Header.Set("Content-Type", "application/json") // JSON endpoints want it
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s: %v", data, err)
		}
	}
	return resp.StatusCode, nil
}

// postNDJSON posts a batch body as application/x-ndjson and answers the status.
func postNDJSON(ctx context.Context, c *http.Client, url string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}
