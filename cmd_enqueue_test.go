package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/edgeq/edgeq/transport/httpapi"
)

// stubDaemon answers every request with one status and body, and records
// the last request.
type stubDaemon struct {
	status int
	body   string
	header http.Header

	mu      sync.Mutex
	req     *http.Request // guarded by mu
	payload string        // guarded by mu
}

func (s *stubDaemon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.req, s.payload = r, string(b)
	s.mu.Unlock()
	for k, v := range s.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(s.status)
	io.WriteString(w, s.body)
}

func (s *stubDaemon) last() (*http.Request, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.req, s.payload
}

func startStub(t *testing.T, s *stubDaemon) string {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv.URL
}

const created = `{"id":"00000000000000ab","queue":"mail","state":"ready","durable":true,"duplicate":false}`

func TestEnqueueCreated(t *testing.T) {
	t.Parallel()
	stub := &stubDaemon{status: http.StatusCreated, body: created}
	url := startStub(t, stub)
	r := runCLI(t, env{}, "enqueue", "--addr", url, "--token", "tok", "mail", "hello",
		"--key", "k1", "--delay", "90s", "--max-attempts", "3", "--ttr", "2m", "--expires-in", "1h",
		"--header", "trace=a=b,c", "--header", "Origin=cli", "--content-type", "text/plain")
	if r.code != 0 || r.stdout != "00000000000000ab\n" || r.stderr != "" {
		t.Fatalf("enqueue: %+v", r)
	}
	req, payload := stub.last()
	q := req.URL.Query()
	checks := map[string][2]string{
		"method":        {req.Method, "POST"},
		"path":          {req.URL.Path, "/v1/queues/mail/jobs"},
		"payload":       {payload, "hello"},
		"key":           {q.Get("key"), "k1"},
		"delay":         {q.Get("delay"), "1m30s"},
		"max_attempts":  {q.Get("max_attempts"), "3"},
		"ttr":           {q.Get("ttr"), "2m0s"},
		"expires_in":    {q.Get("expires_in"), "1h0m0s"},
		"authorization": {req.Header.Get("Authorization"), "Bearer tok"},
		"content type":  {req.Header.Get("Content-Type"), "text/plain"},
		"header trace":  {req.Header.Get("Edgeq-Header-Trace"), "a=b,c"},
		"header origin": {req.Header.Get("Edgeq-Header-Origin"), "cli"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
}

func TestEnqueueStdinAndEnv(t *testing.T) {
	t.Parallel()
	stub := &stubDaemon{status: http.StatusCreated, body: created}
	url := startStub(t, stub)
	vars := map[string]string{"EDGEQ_ADDR": strings.TrimPrefix(url, "http://"), "EDGEQ_TOKEN": "from-env"}
	r := runCLI(t, env{stdin: strings.NewReader("line 1\nline 2\n"), lookupEnv: mapEnv(vars)}, "enqueue", "mail", "-")
	if r.code != 0 || r.stdout != "00000000000000ab\n" {
		t.Fatalf("enqueue: %+v", r)
	}
	req, payload := stub.last()
	if payload != "line 1\nline 2\n" || req.Header.Get("Authorization") != "Bearer from-env" {
		t.Errorf("payload %q, authorization %q", payload, req.Header.Get("Authorization"))
	}

	// A flag wins over its variable, before or after the command.
	vars["EDGEQ_ADDR"] = "http://127.0.0.1:1"
	for _, args := range [][]string{
		{"--addr", url, "--token", "from-flag", "enqueue", "mail"},
		{"enqueue", "mail", "--addr", url, "--token", "from-flag"},
	} {
		if r := runCLI(t, env{lookupEnv: mapEnv(vars)}, args...); r.code != 0 {
			t.Fatalf("edgeq %q: %+v", args, r)
		}
		if req, payload := stub.last(); payload != "" || req.Header.Get("Authorization") != "Bearer from-flag" {
			t.Errorf("edgeq %q: payload %q, authorization %q", args, payload, req.Header.Get("Authorization"))
		}
	}
}

func TestEnqueueDuplicate(t *testing.T) {
	t.Parallel()
	url := startStub(t, &stubDaemon{status: http.StatusOK,
		body: `{"id":"0000000000000007","queue":"mail","state":"ready","durable":true,"duplicate":true}`})
	r := runCLI(t, env{}, "enqueue", "--addr", url, "--key", "k", "mail", "x")
	if r.code != 0 || r.stdout != "0000000000000007\n" || !strings.Contains(r.stderr, "duplicate") {
		t.Errorf("duplicate: %+v", r)
	}
}

func TestEnqueueRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		stub   *stubDaemon
		code   int
		stderr []string
	}{
		{"queue full", &stubDaemon{status: 429, header: http.Header{"Retry-After": {"3"}},
			body: `{"error":{"code":"queue_full","message":"queue mail is full","retry_after_s":3}}`},
			exitTempFail, []string{"queue_full", "retry after 3s"}},
		{"shutting down", &stubDaemon{status: 503, body: `{"error":{"code":"shutting_down","message":"shutting down"}}`},
			exitTempFail, []string{"shutting_down"}},
		{"invalid argument", &stubDaemon{status: 400, body: `{"error":{"code":"invalid_argument","message":"delay: negative"}}`},
			exitFailure, []string{"invalid_argument", "delay: negative"}},
		{"proxy page", &stubDaemon{status: 502, body: "<html>\n<body>bad gateway</body>\n</html>\n"},
			exitFailure, []string{"bad gateway"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := startStub(t, tt.stub)
			r := runCLI(t, env{}, "enqueue", "--addr", url, "mail", "x")
			if r.code != tt.code || r.stdout != "" {
				t.Errorf("code %d stdout %q, want %d and nothing", r.code, r.stdout, tt.code)
			}
			if strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "edgeq: ") {
				t.Errorf("stderr %q, want one line", r.stderr)
			}
			for _, w := range tt.stderr {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q does not contain %q", r.stderr, w)
				}
			}
		})
	}
}

func TestEnqueueNoDaemon(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	r := runCLI(t, env{}, "enqueue", "--addr", url, "mail", "x")
	if r.code != exitFailure || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("no daemon: %+v", r)
	}
}

// TestEnqueueJSON prints the daemon's answer, a duplicate included.
func TestEnqueueJSON(t *testing.T) {
	t.Parallel()
	addr := startDaemon(t)
	var first, again httpapi.EnqueueResult
	decodeJSON(t, mustCLI(t, addr, "enqueue", "mail", "hi", "--key", "k", "--json"), &first)
	if first.ID == "" || first.Queue != "mail" || first.State != "ready" || !first.Durable || first.Duplicate {
		t.Errorf("enqueue --json = %+v", first)
	}
	decodeJSON(t, mustCLI(t, addr, "enqueue", "--json", "mail", "hi", "--key", "k"), &again)
	if again.ID != first.ID || !again.Duplicate {
		t.Errorf("repeated enqueue --json = %+v, want the duplicate of %s", again, first.ID)
	}
}

// TestEveryClientCommandTakesJSON walks the commands: each that talks to
// a daemon (it has --addr) takes --json.
func TestEveryClientCommandTakesJSON(t *testing.T) {
	t.Parallel()
	var walk func(path string, cmds []*cli.Command)
	n := 0
	walk = func(path string, cmds []*cli.Command) {
		for _, c := range cmds {
			name := strings.TrimSpace(path + " " + c.Name)
			if hasFlag(c.Flags, "addr") {
				n++
				if !hasFlag(c.Flags, "json") {
					t.Errorf("edgeq %s has --addr but no --json", name)
				}
			}
			walk(name, c.Subcommands)
		}
	}
	walk("", newApp(env{}).Commands)
	if n < 15 {
		t.Errorf("found %d client commands, want at least 15", n)
	}
}

func hasFlag(flags []cli.Flag, name string) bool {
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			return true
		}
	}
	return false
}

// TestEnqueueContentType sends a payload that is valid JSON as
// application/json, so that a worker gets it as "payload", unless
// --content-type says otherwise.
func TestEnqueueContentType(t *testing.T) {
	t.Parallel()
	addr := startDaemon(t)
	tests := []struct {
		name      string
		stdin     string
		args      []string
		wantType  string
		wantInB64 bool
	}{
		{"json object", "", []string{"mail", `{"to":"ops@example.com"}`}, "application/json", false},
		{"json on stdin", `[1, 2]` + "\n", []string{"mail", "-"}, "application/json", false},
		{"text", "", []string{"mail", "hello"}, "application/octet-stream", true},
		{"empty", "", []string{"mail"}, "application/octet-stream", false},
		{"json as told", "", []string{"mail", `{"a":1}`, "--content-type", "text/plain"}, "text/plain", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runCLI(t, env{stdin: strings.NewReader(tt.stdin)}, append(append([]string{"enqueue"}, tt.args...), "--addr", addr)...)
			if r.code != 0 {
				t.Fatalf("enqueue: %+v", r)
			}
			var j httpapi.Job
			decodeJSON(t, mustCLI(t, addr, "job", "show", strings.TrimSpace(r.stdout), "--json"), &j)
			if j.ContentType != tt.wantType || (len(j.PayloadB64) > 0) != tt.wantInB64 {
				t.Errorf("job %+v: want content type %s, payload_b64 %v", j, tt.wantType, tt.wantInB64)
			}
		})
	}
}
