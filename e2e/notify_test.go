package e2e

import (
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSystemdNotify: the real binary, run as systemd would run a
// Type=notify unit with a watchdog, sends READY=1 once it serves, WATCHDOG=1
// pings while the committer is healthy, and STOPPING=1 on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	daemonEnv = []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=1000000"} // pings every 0.5s
	defer func() { daemonEnv = nil }()
	d := startDaemon(t, filepath.Join(dir, "data"))

	seen := map[string]int{}
	read := func(until string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		buf := make([]byte, 4096)
		for seen[until] == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("no %s within %s; got %v\n%s", until, within, seen, d.log)
			}
			conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			n, err := conn.Read(buf)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(buf[:n]), "\n") {
				if line != "" {
					seen[strings.SplitN(line, "=", 2)[0]+"="+strings.SplitN(line+"=", "=", 3)[1]]++
				}
			}
		}
	}
	read("READY=1", 10*time.Second)
	read("WATCHDOG=1", 5*time.Second)
	d.cmd.Process.Signal(syscall.SIGTERM)
	read("STOPPING=1", 10*time.Second)
	select {
	case <-d.done:
		if code := d.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("exit code %d after SIGTERM", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit 30s after SIGTERM")
	}
	if seen["READY=1"] < 1 || seen["WATCHDOG=1"] < 1 || seen["STOPPING=1"] != 1 {
		t.Errorf("notifications = %v", seen)
	}
}
