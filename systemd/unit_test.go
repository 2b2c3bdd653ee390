package systemd

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const unitFile = "edgeq.service"

// unit is a parsed unit file: section → key → values in file order (a key
// may repeat, as SystemCallFilter= does).
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, `\`) {
				t.Fatalf("%s:%d: want KEY=VALUE inside a section (and no continuation lines), got %q", path, n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// last is the value in force: systemd lets a later assignment win.
func (u unit) last(section, key string) (string, bool) {
	vs := u[section][key]
	if len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

// bytes parses a systemd size (1024-based K, M, G suffixes) or a Go
// GOMEMLIMIT (KiB, MiB, GiB).
func bytesOf(t *testing.T, what, s string) int64 {
	t.Helper()
	m := regexp.MustCompile(`^(\d+)(K|M|G|KiB|MiB|GiB|B)?$`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("%s=%q: not a size", what, s)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	switch m[2] {
	case "K", "KiB":
		n <<= 10
	case "M", "MiB":
		n <<= 20
	case "G", "GiB":
		n <<= 30
	}
	return n
}

func seconds(t *testing.T, what, s string) time.Duration {
	t.Helper()
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second
	}
	d, err := time.ParseDuration(strings.ReplaceAll(s, "min", "m"))
	if err != nil {
		t.Fatalf("%s=%q: not a duration", what, s)
	}
	return d
}

// shutdownTimeout reads the default shutdown_timeout from the reference
// configuration, so that the unit's stop timeout follows it.
func shutdownTimeout(t *testing.T) time.Duration {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "configs", "edgeq.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^shutdown_timeout: *(\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("configs/edgeq.yaml has no shutdown_timeout")
	}
	d, err := time.ParseDuration(string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestUnitRequiredKeys(t *testing.T) {
	u := parseUnit(t, unitFile)
	want := []struct{ section, key, value string }{
		{"Service", "Type", "notify"},
		{"Service", "NotifyAccess", "main"},
		{"Service", "WatchdogSec", "30"},
		{"Service", "Restart", "on-failure"},
		{"Service", "RestartPreventExitStatus", "78"},
		{"Service", "StateDirectory", "edgeq"},
		{"Service", "ConfigurationDirectory", "edgeq"},
		{"Service", "ProtectSystem", "strict"},
		{"Service", "ProtectHome", "yes"},
		{"Service", "PrivateTmp", "yes"},
		{"Service", "NoNewPrivileges", "yes"},
		{"Service", "RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"},
		{"Service", "ExecStart", "/usr/bin/edgeq serve --config /etc/edgeq/edgeq.yaml"},
		{"Service", "ExecReload", "/bin/kill -HUP $MAINPID"},
		{"Service", "User", "edgeq"},
		{"Install", "WantedBy", "multi-user.target"},
	}
	for _, w := range want {
		if got, _ := u.last(w.section, w.key); got != w.value {
			t.Errorf("[%s] %s=%q, want %q", w.section, w.key, got, w.value)
		}
	}
	// RestartPreventExitStatus= does not apply to ExecStartPre=: one that
	// fails on a bad configuration is restarted forever (e2e
	// TestUnitRestartLogic runs the unit's logic on the real binary).
	for _, pre := range u["Service"]["ExecStartPre"] {
		if !strings.HasPrefix(pre, "-") {
			t.Errorf("ExecStartPre=%s: its failure would be restarted whatever RestartPreventExitStatus= says", pre)
		}
	}
	if f := u["Service"]["SystemCallFilter"]; !slices.Contains(f, "@system-service") {
		t.Errorf("SystemCallFilter=%q, want @system-service among them", f)
	}
	// ProcSubset=pid hides /proc/meminfo and /proc/pressure from the governor.
	if v, ok := u.last("Service", "ProcSubset"); ok && v != "all" {
		t.Errorf("ProcSubset=%s hides /proc/meminfo and /proc/pressure from the governor", v)
	}

	// Memory: GOMEMLIMIT < MemoryHigh < MemoryMax. The governor counts anon
	// memory against MemoryHigh and enters elevated at 85% (exit 75%), so
	// a heap at GOMEMLIMIT must stay below 75% of MemoryHigh.
	var goMemLimit string
	for _, e := range u["Service"]["Environment"] {
		if v, ok := strings.CutPrefix(e, "GOMEMLIMIT="); ok {
			goMemLimit = v
		}
	}
	high, okHigh := u.last("Service", "MemoryHigh")
	mx, okMax := u.last("Service", "MemoryMax")
	if goMemLimit == "" || !okHigh || !okMax {
		t.Fatalf("want Environment=GOMEMLIMIT=, MemoryHigh= and MemoryMax=; got %q, %q, %q", goMemLimit, high, mx)
	}
	lim, h, m := bytesOf(t, "GOMEMLIMIT", goMemLimit), bytesOf(t, "MemoryHigh", high), bytesOf(t, "MemoryMax", mx)
	if lim*100 > h*75 || h >= m {
		t.Errorf("GOMEMLIMIT=%s, MemoryHigh=%s, MemoryMax=%s: want GOMEMLIMIT ≤ 75%% of MemoryHigh < MemoryMax",
			goMemLimit, high, mx)
	}

	// The clean stop (shutdown_timeout, then closing the store) must finish
	// before systemd's SIGKILL.
	stop, _ := u.last("Service", "TimeoutStopSec")
	if st, sd := seconds(t, "TimeoutStopSec", stop), shutdownTimeout(t); st < sd+10*time.Second {
		t.Errorf("TimeoutStopSec=%s: want at least shutdown_timeout (%s) + 10s to close the store", stop, sd)
	}
}

// TestUnitVerify runs systemd-analyze verify on the unit, with ExecStart
// pointed at an executable that exists here (verify checks it).
func TestUnitVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian: apt-get install systemd); TestUnitRequiredKeys still checks the unit")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), unitFile)
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(b), "/usr/bin/edgeq", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	// verify exits 0 on unknown keys and misplaced settings, saying so on
	// stderr: any output is a failure.
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unitFile, err, out)
	}
}
