package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser answers a chromedp context on a headless Chromium from Debian's
// packages. Without one the test skips, saying so, unless
// EDGEQ_REQUIRE_BROWSER is set (.ci/run sets it after installing it).
func browser(t *testing.T) context.Context {
	t.Helper()
	var bin string
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("EDGEQ_REQUIRE_BROWSER") != "" {
			t.Fatal("chromium is not on PATH and EDGEQ_REQUIRE_BROWSER is set (apt-get install chromium)")
		}
		t.Skip("chromium is not on PATH: the status page was not driven in a browser (apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.WindowSize(1280, 1400))
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTime(); cancelCtx(); cancelAlloc() })
	return ctx
}

// waitJS evaluates expr in the page until it is true, at most 20 s.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
			t.Fatalf("%s: not true after 20 s (%s); the page says:\n%s", what, expr, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// queueState reads one queue's stats from the API.
func queueState(t *testing.T, base, q string) map[string]any {
	t.Helper()
	var st map[string]any
	if code, err := call(t.Context(), http.DefaultClient, "GET", base+"/v1/queues/"+q, nil, &st); err != nil || code != 200 {
		t.Fatalf("GET queue %s: %d %v", q, code, err)
	}
	return st
}

// TestStatusPageInBrowser drives the status page in headless Chromium
// against the real binary: it loads, its charts draw the history, a button
// pauses a queue, a dead job is seen with its last error and retried, the
// queues with ordered groups list them (issue 20), and a purge needs the
// queue's name typed. EDGEQ_STATUS_SCREENSHOT=FILE
// writes a screenshot (docs/status.png is one).
func TestStatusPageInBrowser(t *testing.T) {
	ctx := browser(t)
	conf := filepath.Join(t.TempDir(), "edgeq.yaml")
	if err := os.WriteFile(conf, []byte("schedules:\n  nightly: {cron: \"0 3 * * *\", queue: reports}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, t.TempDir(), "--config", conf)
	if code, err := call(t.Context(), http.DefaultClient, "PUT", d.base+"/v1/schedules/hourly-sync", []byte(`{"cron":"@every 1h","queue":"sync"}`), nil); err != nil || code != 201 {
		t.Fatalf("PUT schedule: %d %v", code, err)
	}
	for i := range 30 {
		for _, q := range []string{"orders", "telemetry"} {
			if code, err := call(t.Context(), http.DefaultClient, "POST", d.base+"/v1/queues/"+q+"/jobs", fmt.Appendf(nil, `{"n":%d}`, i), nil); err != nil || code != 201 {
				t.Fatalf("enqueue: %d %v", code, err)
			}
		}
	}
	// Ordered groups: two groups with work in plc, plc-1's head the oldest.
	for _, g := range []string{"plc-1", "plc-2", "plc-1"} {
		if code, err := call(t.Context(), http.DefaultClient, "POST", d.base+"/v1/queues/plc/jobs?group="+g, []byte(`{}`), nil); err != nil || code != 201 {
			t.Fatalf("enqueue to group %s: %d %v", g, code, err)
		}
	}
	var leased struct{ Jobs []apiJob }
	if code, err := call(t.Context(), http.DefaultClient, "POST", d.base+"/v1/queues/orders/lease?max=1", nil, &leased); err != nil || code != 200 || len(leased.Jobs) != 1 {
		t.Fatalf("lease: %d %v", code, err)
	}
	dead := leased.Jobs[0]
	if code, err := call(t.Context(), http.DefaultClient, "POST", d.base+"/v1/jobs/"+dead.ID+"/fail?lease="+dead.Lease.ID+"&error=printer+on+fire", nil, nil); err != nil || code != 200 {
		t.Fatalf("fail: %d %v", code, err)
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(d.base+"/"), chromedp.WaitVisible(chromedp.CSS(`td.name[title="orders"]`))); err != nil {
		t.Fatalf("the page did not show the queue: %v", err)
	}
	// Charts: the server's first sample and the page's own polls.
	waitJS(t, ctx, "charts drawn with data",
		`Array.from(document.querySelectorAll("#charts svg")).filter(s => +s.dataset.points >= 2).length >= 4`)

	// Schedules: the file's and the API's; only the API's can be deleted here.
	waitJS(t, ctx, "schedules listed",
		`document.querySelectorAll("#schedules tr").length === 2 && document.querySelectorAll("#schedules button[data-act=unschedule]").length === 1 && document.querySelector("#schedules").textContent.includes("@every 1h")`)

	// Groups: a row for the queue with groups, none for the others.
	waitJS(t, ctx, "groups listed",
		`(() => { const rows = document.querySelectorAll("#groups tr"); if (rows.length !== 1 || document.querySelector("#groups-box").hidden) return false;
		  const c = Array.from(rows[0].cells, (td) => td.textContent); return c[0] === "plc" && c[1] === "2" && c[2] === "plc-1" && /^(\d+s|\d+m\d\ds)$/.test(c[3]) && c[4] === "1"; })()`)

	// Pause from the page.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-act="pause"][data-q="orders"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[data-act="resume"][data-q="orders"]`))); err != nil {
		t.Fatalf("pause: %v", err)
	}
	if st := queueState(t, d.base, "orders"); st["paused"] != true {
		t.Fatalf("orders after the pause button: %v", st)
	}

	// The dead job, its last error, retried from the page.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-act="dead"][data-q="orders"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#dead-rows input[value="`+dead.ID+`"]`))); err != nil {
		t.Fatalf("dead list: %v", err)
	}
	waitJS(t, ctx, "last error shown", `document.querySelector("#dead-rows").textContent.includes("printer on fire")`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#dead-rows input[value="`+dead.ID+`"]`)),
		chromedp.Click(chromedp.CSS(`#dead-retry-sel`))); err != nil {
		t.Fatalf("retry: %v", err)
	}
	waitJS(t, ctx, "retry done", `document.querySelector("#notice").textContent.includes("retried 1 jobs of orders")`)
	if st := queueState(t, d.base, "orders"); st["dead"] != float64(0) || st["ready"] != float64(30) {
		t.Fatalf("orders after retry: dead %v ready %v, want 0 and 30", st["dead"], st["ready"])
	}

	if shot := os.Getenv("EDGEQ_STATUS_SCREENSHOT"); shot != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(shot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Purge needs the name typed: a wrong one leaves the button disabled.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-act="purge"][data-q="telemetry"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#purge-confirm`)), chromedp.SendKeys(chromedp.CSS(`#purge-confirm`), "telemetr")); err != nil {
		t.Fatalf("purge dialog: %v", err)
	}
	waitJS(t, ctx, "purge refused until the name is typed", `document.querySelector("#purge-ok").disabled`)
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#purge-confirm`), "y"), chromedp.Click(chromedp.CSS(`#purge-ok`))); err != nil {
		t.Fatalf("purge: %v", err)
	}
	waitJS(t, ctx, "purge done", `document.querySelector("#notice").textContent.includes("purged 30 jobs of telemetry")`)
	if st := queueState(t, d.base, "telemetry"); st["ready"] != float64(0) {
		t.Fatalf("telemetry after purge: %v", st)
	}
}

// TestStatusPageInBrowserToken: with a token the page asks for it, then
// shows the queues.
func TestStatusPageInBrowserToken(t *testing.T) {
	ctx := browser(t)
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("s3cret-page\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, t.TempDir(), "--token-file", tok)
	req, _ := http.NewRequest("POST", d.base+"/v1/queues/orders/jobs", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer s3cret-page")
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 201 {
		t.Fatalf("enqueue: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(d.base+"/"), chromedp.WaitVisible(chromedp.CSS(`#login`)),
		chromedp.SendKeys(chromedp.CSS(`#token`), "s3cret-page"), chromedp.Click(chromedp.CSS(`#login button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`td.name[title="orders"]`))); err != nil {
		t.Fatalf("login: %v", err)
	}
}

// TestStatusPageInBrowserReadToken: a token with only the read role sees
// the queues but no buttons (GET /v1/whoami names its roles).
func TestStatusPageInBrowserReadToken(t *testing.T) {
	ctx := browser(t)
	dir := t.TempDir()
	tok := filepath.Join(dir, "viewer.token")
	if err := os.WriteFile(tok, []byte("viewer-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "edgeq.yaml")
	if err := os.WriteFile(conf, []byte("http:\n  tokens:\n    - {name: viewer, file: "+tok+", roles: [read]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, t.TempDir(), "--config", conf)
	if err := chromedp.Do(ctx, chromedp.Navigate(d.base+"/"), chromedp.WaitVisible(chromedp.CSS(`#login`)),
		chromedp.SendKeys(chromedp.CSS(`#token`), "viewer-secret"), chromedp.Click(chromedp.CSS(`#login button[type="submit"]`))); err != nil {
		t.Fatalf("login: %v", err)
	}
	waitJS(t, ctx, "read token: no buttons", `document.body.classList.contains("ro")`)
	var visible bool
	if visible, _ = chromedp.Run(ctx, chromedp.Evaluate[bool](`Array.from(document.querySelectorAll("td.acts, th.acts")).some(e => getComputedStyle(e).display !== "none")`)); visible {
		t.Error("a read-only token sees the actions column")
	}
}
