package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

func TestStatusPage(t *testing.T) {
	ts := mustStartServer(t, Config{})
	r := ts.do(t, "GET", "/", nil)
	r.wantStatus(t, http.StatusOK)
	if ct := r.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q, want text/html; charset=utf-8", ct)
	}
	if !bytes.Equal(r.body, statusHTML) {
		t.Error("GET / did not answer the embedded page")
	}
	for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options", "Cache-Control", "X-Frame-Options"} {
		if r.header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	page := string(r.body)
	lower := strings.ToLower(page)

	// Self-contained: works offline, loads nothing from anywhere.
	for _, bad := range []string{"http://", "https://", "<script src", " src=", "<link", "@import", "url(", "//cdn", "innerhtml", "outerhtml", "insertadjacenthtml", "document.write", "eval("} {
		if strings.Contains(lower, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	// The CSP allows the inline blocks by hash only: no inline handlers or
	// style attributes, which it would block.
	markup := regexp.MustCompile(`(?s)<script>.*</script>`).ReplaceAllString(page, "")
	if m := regexp.MustCompile(`(?i)<[^>]*\s(on[a-z]+|style)\s*=`).FindString(markup); m != "" {
		t.Errorf("page has an inline handler or style attribute: %s", m)
	}
	csp := r.header.Get("Content-Security-Policy")
	for _, tag := range []string{"style", "script"} {
		if n := strings.Count(lower, "<"+tag); n != 1 {
			t.Errorf("%d <%s> elements, want 1", n, tag)
			continue
		}
		_, rest, _ := strings.Cut(page, "<"+tag+">")
		body, _, ok := strings.Cut(rest, "</"+tag+">")
		if !ok {
			t.Errorf("<%s> not closed or has attributes", tag)
			continue
		}
		sum := sha256.Sum256([]byte(body))
		if h := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, tag+"-src "+h) {
			t.Errorf("CSP %q lacks %s-src %s", csp, tag, h)
		}
	}
	for _, want := range []string{"default-src 'none'", "connect-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}

	// The elements the script fills, and what it relies on.
	for _, id := range []string{"queues", "empty", "gov-level", "gov-reason", "gov-drill", "gov-conc", "cpu", "mem", "disk",
		"uptime", "updated", "banner", "login", "login-msg", "token", "logout", "dash", "spark-tpl"} {
		if !strings.Contains(page, `id="`+id+`"`) {
			t.Errorf("page lacks the element #%s", id)
		}
	}
	for _, want := range []string{`fetch("v1/stats"`, "sessionStorage", `"Bearer "`, "status === 401", "textContent", "<svg", "POLL_MS = 2000", "5 * 60 * 1000"} {
		if !strings.Contains(page, want) {
			t.Errorf("page script lacks %q", want)
		}
	}

	ts.do(t, "HEAD", "/", nil).wantStatus(t, http.StatusOK)
	// Only the root is the page: the catch-all still answers JSON.
	ts.do(t, "GET", "/index.html", nil).wantError(t, 404, "not_found", "GET /index.html", 0)
	r = ts.do(t, "POST", "/", nil)
	r.wantError(t, 405, "method_not_allowed", "POST /", 0)
	if got := r.header.Get("Allow"); !strings.Contains(got, "GET") {
		t.Errorf("Allow = %q, want GET", got)
	}
}

func TestStatusPageAuth(t *testing.T) {
	ts := mustStartServer(t, Config{Token: "s3cret"})
	for _, tc := range []struct {
		method, path, auth string
		status             int
	}{
		{"GET", "/", "", 200},
		{"GET", "/", "Bearer wrong", 200},
		{"GET", "/?x=1", "", 200},
		{"HEAD", "/", "", 200}, // public like GET: the page carries no data
		{"POST", "/", "", 401},
		{"GET", "/index.html", "", 401},
		{"GET", "/v1/stats", "", 401},
		{"GET", "/v1/stats", "Bearer wrong", 401},
		{"GET", "/v1/stats", "Bearer s3cret", 200},
		{"GET", "/v1/queues", "", 401},
		{"GET", "/metrics", "", 401},
		{"GET", "/healthz", "", 200},
	} {
		var hdr []string
		if tc.auth != "" {
			hdr = []string{"Authorization", tc.auth}
		}
		r := ts.do(t, tc.method, tc.path, nil, hdr...)
		if r.status != tc.status {
			t.Errorf("%s %s %q: status %d, want %d", tc.method, tc.path, tc.auth, r.status, tc.status)
			continue
		}
		if tc.status == 401 && tc.method != "HEAD" {
			r.wantError(t, 401, "unauthorized", "Bearer", 0)
		}
		if tc.path == "/" && tc.method == "GET" && tc.status == 200 && !bytes.Equal(r.body, statusHTML) {
			t.Errorf("%s %s: not the page", tc.method, tc.path)
		}
	}
}

// TestStatusPageTLS serves the page and the stats behind it over TLS with a
// generated certificate and a token.
func TestStatusPageTLS(t *testing.T) {
	certFile, keyFile, pool := selfSignedFiles(t)
	ts := mustStartServer(t, Config{TLSCert: certFile, TLSKey: keyFile, Token: "s3cret"})
	ts.hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	ts.base = "https://" + ts.Addr().String()
	r := ts.do(t, "GET", "/", nil)
	r.wantStatus(t, 200)
	if !bytes.Equal(r.body, statusHTML) {
		t.Error("GET / over TLS did not answer the page")
	}
	ts.do(t, "GET", "/v1/stats", nil).wantError(t, 401, "unauthorized", "", 0)
	ts.do(t, "GET", "/v1/stats", nil, "Authorization", "Bearer s3cret").wantStatus(t, 200)
}

// TestQueueStatsExtras checks the fields beyond SPEC §5 that the status
// page shows: running, breaker and alerting.
func TestQueueStatsExtras(t *testing.T) {
	ts := mustStartServer(t, Config{})
	ts.eng.with(func(f *fakeEngine) {
		f.extraQ = []engine.QueueStats{
			{Name: "closed"},
			{Name: "half", Breaker: engine.BreakerHalfOpen, Running: 2, Alerting: true},
			{Name: "open", Breaker: engine.BreakerOpen},
		}
	})
	r := ts.do(t, "GET", "/v1/stats", nil)
	r.wantStatus(t, 200)
	var raw struct{ Queues []json.RawMessage }
	if err := json.Unmarshal(r.body, &raw); err != nil || len(raw.Queues) != 3 {
		t.Fatalf("stats %s: %v", r.body, err)
	}
	for _, q := range raw.Queues {
		wantKeys(t, q, queueStatsKeys...)
	}
	var doc StatsDoc
	r.decode(t, &doc)
	for i, want := range []struct {
		breaker  string
		running  int
		alerting bool
	}{{"closed", 0, false}, {"half-open", 2, true}, {"open", 0, false}} {
		q := doc.Queues[i]
		if q.Breaker != want.breaker || q.Running != want.running || q.Alerting != want.alerting {
			t.Errorf("queue %s: breaker %q running %d alerting %v, want %+v", q.Name, q.Breaker, q.Running, q.Alerting, want)
		}
	}
}

// TestStatusPageHeadless renders the page in headless Chromium against a
// server with a fake engine and checks the DOM the script built: the
// queue's row, and a hostile queue name shown as text, not markup.
func TestStatusPageHeadless(t *testing.T) {
	var bin string
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("chromium is not on PATH: the status page was not rendered in a browser (the static checks of TestStatusPage still ran)")
	}
	ts := mustStartServer(t, Config{Uplinks: func() []UplinkStats {
		return []UplinkStats{{Name: "cloud", Type: "nats", Connected: false, DownForS: 125, Alerting: true, Queues: []string{"telemetry", "alarms"},
			BacklogJobs: 4321, OldestAgeS: 130, JobsSent: 99, BytesSent: 2048, MaxRate: 200, Compression: 1}}
	}})
	ts.eng.put(job.Job{Queue: "orders-eu", State: job.StateReady})
	ts.eng.with(func(f *fakeEngine) {
		f.extraQ = []engine.QueueStats{{Name: `<i id="xss">bold</i>`, Breaker: engine.BreakerOpen, Alerting: true}}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=5000", "--dump-dom", ts.base+"/")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.Bytes())
	}
	dom := string(out)
	if !strings.Contains(dom, `<td class="name" title="orders-eu">orders-eu</td>`) {
		t.Errorf("rendered DOM lacks the row of orders-eu:\n%s", dom)
	}
	if strings.Contains(dom, `<i id="xss">`) {
		t.Error("a queue name was rendered as markup")
	}
	if !strings.Contains(dom, `&lt;i id="xss"&gt;bold&lt;/i&gt;`) {
		t.Errorf("rendered DOM lacks the escaped hostile queue name:\n%s", dom)
	}
	if !strings.Contains(dom, "breaker open") || !strings.Contains(dom, "backlog alert") {
		t.Errorf("rendered DOM lacks the breaker and alert tags:\n%s", dom)
	}
	for _, want := range []string{`<td class="name" title="cloud">cloud</td>`, "down 2m05s", ">alert<", "<td>4321</td>", "<td>0.0 / 200</td>", "telemetry, alarms"} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks the uplink's %q:\n%s", want, dom)
		}
	}
	if !strings.Contains(dom, "<polyline") {
		t.Errorf("rendered DOM lacks a sparkline:\n%s", dom)
	}
}
