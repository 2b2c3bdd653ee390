package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// result is what a command line did.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs args in-process as main would, with e's stdin and variables
// (none when nil).
func runCLI(t *testing.T, e env, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e.stdout, e.stderr = &stdout, &stderr
	if e.stdin == nil {
		e.stdin = strings.NewReader("")
	}
	if e.lookupEnv == nil {
		e.lookupEnv = mapEnv(nil)
	}
	code := exitCode(run(t.Context(), append([]string{"edgeq"}, args...), e), &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func mapEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}, {"-v"}} {
		r := runCLI(t, env{}, args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "edgeq dev (go") || r.stderr != "" {
			t.Errorf("edgeq %q: %+v", args, r)
		}
	}
	if r := runCLI(t, env{}, "version", "extra"); r.code != exitUsage {
		t.Errorf("version extra: code %d, want %d", r.code, exitUsage)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	good := writeFile(t, "good.yaml", "queues:\n  notify: {class: critical}\n")
	if r := runCLI(t, env{}, "config", "validate", good); r.code != 0 || r.stdout != "ok\n" || r.stderr != "" {
		t.Errorf("valid file: %+v", r)
	}
	bad := writeFile(t, "bad.yaml", "queues:\n  sync: {class: urgent}\n")
	r := runCLI(t, env{}, "config", "validate", bad)
	if want := bad + `:2: queues.sync.class: unknown class "urgent"`; r.code != exitConfig || !strings.Contains(r.stderr, want) || r.stdout != "" {
		t.Errorf("invalid file: %+v, want exit 78 and %q on stderr", r, want)
	}
	if r := runCLI(t, env{}, "config", "validate", filepath.Join(t.TempDir(), "missing.yaml")); r.code != exitConfig || !strings.Contains(r.stderr, "no such file") {
		t.Errorf("missing file: %+v", r)
	}
	if r := runCLI(t, env{}, "config", "validate"); r.code != exitUsage {
		t.Errorf("no file: %+v", r)
	}
}

func TestConfigExample(t *testing.T) {
	t.Parallel()
	want, err := os.ReadFile("configs/edgeq.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, env{}, "config", "example"); r.code != 0 || r.stdout != string(want) {
		t.Errorf("config example: code %d, stdout differs from configs/edgeq.yaml: %v", r.code, r.stdout != string(want))
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"config"},
		{"config", "frobnicate"},
		{"enqueue"},
		{"enqueue", "q", "a", "b"},
		{"enqueue", "--bogus", "q"},
		{"enqueue", "--max-attempts", "many", "q"},
		{"enqueue", "--header", "novalue", "q"},
		{"enqueue", "--delay", "-1s", "q"},
		{"enqueue", "Not A Queue"},
		{"serve", "extra"},
		{"serve", "--bogus"},
		{"help", "frobnicate"},
	} {
		r := runCLI(t, env{}, args...)
		if r.code != exitUsage || !strings.HasPrefix(r.stderr, "edgeq: ") {
			t.Errorf("edgeq %q: code %d stderr %q, want exit 2 and a message", args, r.code, r.stderr)
		}
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"help", "enqueue"}, {"serve", "--help"}, {"enqueue", "--help"}, {"config", "validate", "--help"}} {
		r := runCLI(t, env{}, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "USAGE") {
			t.Errorf("edgeq %q: %+v", args, r)
		}
	}
	r := runCLI(t, env{}, "serve", "--help")
	for _, o := range overrides {
		if !strings.Contains(r.stdout, "--"+o.flag) || !strings.Contains(r.stdout, "$"+o.env) {
			t.Errorf("serve --help does not show --%s and $%s", o.flag, o.env)
		}
	}
}

func TestIntersperse(t *testing.T) {
	t.Parallel()
	app := newApp(env{})
	tests := []struct{ in, want []string }{
		{[]string{"edgeq"}, []string{"edgeq"}},
		{[]string{"edgeq", "enqueue", "q", "p", "--key", "k"}, []string{"edgeq", "enqueue", "--key", "k", "--", "q", "p"}},
		{[]string{"edgeq", "--addr", "a", "enqueue", "q", "--delay=5s"}, []string{"edgeq", "--addr", "a", "enqueue", "--delay=5s", "--", "q"}},
		{[]string{"edgeq", "enqueue", "q", "--", "--not-a-flag"}, []string{"edgeq", "enqueue", "--", "q", "--not-a-flag"}},
		{[]string{"edgeq", "enqueue", "q", "-", "--header", "a=b", "--header", "c=d"}, []string{"edgeq", "enqueue", "--header", "a=b", "--header", "c=d", "--", "q", "-"}},
		{[]string{"edgeq", "config", "validate", "f.yaml"}, []string{"edgeq", "config", "validate", "--", "f.yaml"}},
		{[]string{"edgeq", "serve", "--insecure-no-auth", "--http-addr", ":1"}, []string{"edgeq", "serve", "--insecure-no-auth", "--http-addr", ":1", "--"}},
		{[]string{"edgeq", "nope", "--x", "y"}, []string{"edgeq", "nope", "--x", "y"}},
	}
	for _, tt := range tests {
		if got := intersperse(app, tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("intersperse(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// settled runs serve with a daemon that only records its settings.
func settled(t *testing.T, vars map[string]string, args ...string) (serveSettings, result) {
	t.Helper()
	var got serveSettings
	e := env{lookupEnv: mapEnv(vars), daemon: func(_ context.Context, s serveSettings, _ env) error {
		got = s
		return nil
	}}
	return got, runCLI(t, e, append([]string{"serve"}, args...)...)
}

func TestServePrecedence(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "edgeq.yaml", `
data_dir: /from/file
http: {addr: "127.0.0.2:1"}
storage: {sync: interval, sync_interval: 5s}
strict_queues: true
max_payload: 2MiB
log: {level: warn}
`)
	tests := []struct {
		name  string
		vars  map[string]string
		args  []string
		check func(c *Config) bool
	}{
		{"defaults", nil, nil, func(c *Config) bool {
			return c.DataDir == "edgeq-data" && c.HTTP.Addr == "127.0.0.1:7070" && c.Storage.Sync == "always" &&
				c.MQTT.Broker == "" && c.MaxPayload == MiB && !c.StrictQueues
		}},
		{"state directory", map[string]string{"STATE_DIRECTORY": "/var/lib/edgeq:/var/lib/other"}, nil, func(c *Config) bool {
			return c.DataDir == "/var/lib/edgeq"
		}},
		{"file", map[string]string{"STATE_DIRECTORY": "/var/lib/edgeq"}, []string{"--config", file}, func(c *Config) bool {
			return c.DataDir == "/from/file" && c.HTTP.Addr == "127.0.0.2:1" && c.Storage.Sync == "interval" &&
				c.StrictQueues && c.MaxPayload == 2*MiB && c.Log.Level == "warn" && c.Log.Format == "text"
		}},
		{"config from env", map[string]string{"EDGEQ_CONFIG": file}, nil, func(c *Config) bool {
			return c.DataDir == "/from/file"
		}},
		{"env over file", map[string]string{
			"EDGEQ_CONFIG": file, "EDGEQ_DATA_DIR": "/from/env", "EDGEQ_HTTP_ADDR": "127.0.0.3:2", "EDGEQ_SYNC": "always",
			"EDGEQ_STRICT_QUEUES": "false", "EDGEQ_MAX_PAYLOAD": "512KiB", "EDGEQ_LOG_LEVEL": "debug",
			"EDGEQ_MQTT_BROKER": "tcp://broker:1883", "EDGEQ_MEMORY": "default", "EDGEQ_SHUTDOWN_TIMEOUT": "5s", "EDGEQ_LOG_FORMAT": "json",
		}, nil, func(c *Config) bool {
			return c.DataDir == "/from/env" && c.HTTP.Addr == "127.0.0.3:2" && c.Storage.Sync == "always" &&
				!c.StrictQueues && c.MaxPayload == 512*KiB && c.Log.Level == "debug" && c.Log.Format == "json" &&
				c.MQTT.Broker == "tcp://broker:1883" && c.Storage.Memory == "default" && c.ShutdownTimeout == Duration(5e9) &&
				c.Storage.SyncInterval == Duration(5e9)
		}},
		{"empty env is unset", map[string]string{"EDGEQ_CONFIG": file, "EDGEQ_DATA_DIR": ""}, nil, func(c *Config) bool {
			return c.DataDir == "/from/file"
		}},
		{"flags over env", map[string]string{
			"EDGEQ_CONFIG": file, "EDGEQ_DATA_DIR": "/from/env", "EDGEQ_HTTP_ADDR": "127.0.0.3:2", "EDGEQ_STRICT_QUEUES": "true",
		}, []string{"--data-dir", "/from/flag", "--http-addr", "[::1]:3", "--strict-queues=false", "--sync", "always", "--max-payload", "100"},
			func(c *Config) bool {
				return c.DataDir == "/from/flag" && c.HTTP.Addr == "[::1]:3" && !c.StrictQueues &&
					c.Storage.Sync == "always" && c.MaxPayload == 100
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, r := settled(t, tt.vars, tt.args...)
			if r.code != 0 {
				t.Fatalf("serve: %+v", r)
			}
			if !tt.check(s.cfg) {
				t.Errorf("settled config %+v", *s.cfg)
			}
		})
	}
}

func TestServeRefusals(t *testing.T) {
	t.Parallel()
	badFile := writeFile(t, "bad.yaml", "queues: {sync: {class: urgent}}\n")
	tests := []struct {
		name string
		vars map[string]string
		args []string
		want string
	}{
		{"bad file", nil, []string{"--config", badFile}, `queues.sync.class: unknown class "urgent"`},
		{"missing file", nil, []string{"--config", "/nonexistent/edgeq.yaml"}, "no such file"},
		{"bad env size", map[string]string{"EDGEQ_MAX_PAYLOAD": "1XB"}, nil, `EDGEQ_MAX_PAYLOAD: invalid size "1XB"`},
		{"bad flag duration", nil, []string{"--shutdown-timeout", "soon"}, `--shutdown-timeout: invalid duration "soon"`},
		{"bad env bool", map[string]string{"EDGEQ_STRICT_QUEUES": "maybe"}, nil, "EDGEQ_STRICT_QUEUES:"},
		{"bad flag value", nil, []string{"--sync", "sometimes"}, `storage.sync: unknown sync mode "sometimes" (want always or interval) (set by --sync)`},
		{"bad env value", map[string]string{"EDGEQ_LOG_FORMAT": "xml"}, nil, `log.format: unknown format "xml" (want text or json) (set by EDGEQ_LOG_FORMAT)`},
		{"open without token", nil, []string{"--http-addr", "0.0.0.0:7070"}, "refusing to serve 0.0.0.0:7070 without a token"},
		{"all interfaces without token", map[string]string{"EDGEQ_HTTP_ADDR": ":7070"}, nil, "without a token"},
		{"empty token file", nil, []string{"--http-addr", "10.0.0.1:7070", "--token-file", writeFile(t, "empty", " \n")}, "is empty"},
		{"bad insecure env", map[string]string{"EDGEQ_INSECURE_NO_AUTH": "sure"}, nil, "EDGEQ_INSECURE_NO_AUTH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, r := settled(t, tt.vars, tt.args...)
			if r.code != exitConfig || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("code %d stderr %q, want exit 78 and %q", r.code, r.stderr, tt.want)
			}
		})
	}
}

func TestServeAuth(t *testing.T) {
	t.Parallel()
	token := writeFile(t, "token", "  s3cret\n")
	tests := []struct {
		name      string
		vars      map[string]string
		args      []string
		wantToken string
	}{
		{"loopback v4", nil, []string{"--http-addr", "127.0.0.1:7070"}, ""},
		{"loopback v6", nil, []string{"--http-addr", "[::1]:7070"}, ""},
		{"localhost", nil, []string{"--http-addr", "localhost:7070"}, ""},
		{"insecure flag", nil, []string{"--http-addr", "0.0.0.0:7070", "--insecure-no-auth"}, ""},
		{"insecure env", map[string]string{"EDGEQ_INSECURE_NO_AUTH": "1"}, []string{"--http-addr", "0.0.0.0:7070"}, ""},
		{"token file", nil, []string{"--http-addr", "0.0.0.0:7070", "--token-file", token}, "s3cret"},
		{"token file from env", map[string]string{"EDGEQ_TOKEN_FILE": token, "EDGEQ_HTTP_ADDR": "192.0.2.1:80"}, nil, "s3cret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, r := settled(t, tt.vars, tt.args...)
			if r.code != 0 || s.token != tt.wantToken {
				t.Errorf("code %d stderr %q token %q, want 0 and token %q", r.code, r.stderr, s.token, tt.wantToken)
			}
		})
	}
}
