package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// do sends one request with the given headers and answers the status and
// the body.
func do(t *testing.T, method, url, body string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestHeaderInvalidUTF8 (issue 14 item 11): a job header whose value is not
// valid UTF-8 is refused with 400 naming the header, and nothing is stored.
func TestHeaderInvalidUTF8(t *testing.T) {
	d := startDaemon(t, filepath.Join(t.TempDir(), "data"))
	code, body := do(t, "POST", d.base+"/v1/queues/hq/jobs", "x", map[string]string{"Edgeq-Header-Trace": "a\xffb"})
	if code != 400 || !strings.Contains(body, "invalid_argument") || !strings.Contains(body, "trace") {
		t.Fatalf("header with \\xff: %d %s, want 400 invalid_argument naming the header trace", code, body)
	}
	if code, body := do(t, "GET", d.base+"/v1/queues/hq", "", nil); code != 404 {
		t.Errorf("queue hq after the refused job: %d %s, want 404", code, body)
	}
	code, body = do(t, "POST", d.base+"/v1/queues/hq/batch", `{"payload":1,"headers":{"trace":"a`+"\xff"+`b"}}`, map[string]string{"Content-Type": "application/x-ndjson"})
	if code != 400 || !strings.Contains(body, "headers") || !strings.Contains(body, "UTF-8") {
		t.Fatalf("batch line header with \\xff: %d %s, want 400 naming headers", code, body)
	}
	code, body = do(t, "POST", d.base+"/v1/queues/hq/jobs", "x", map[string]string{"Edgeq-Header-Trace": "ä ok"})
	if code != 201 {
		t.Fatalf("valid UTF-8 header: %d %s, want 201", code, body)
	}
}

// TestOnlyAcceptedJobsCreateQueues (issue 13 item 13): admin calls on a
// queue that does not exist answer 404 unknown_queue and create nothing; a
// refused enqueue creates nothing; a lease on a queue that does not exist
// yet answers an empty list, or the job that creates it during its wait.
func TestOnlyAcceptedJobsCreateQueues(t *testing.T) {
	d := startDaemon(t, filepath.Join(t.TempDir(), "data"))
	for _, c := range []struct{ method, path string }{
		{"POST", "/v1/queues/nosuchq/pause"},
		{"POST", "/v1/queues/nosuchq/resume"},
		{"DELETE", "/v1/queues/nosuchq/jobs"},
		{"GET", "/v1/queues/nosuchq/dead"},
		{"POST", "/v1/queues/nosuchq/dead/retry"},
		{"DELETE", "/v1/queues/nosuchq/dead"},
		{"POST", "/v1/queues/nosuchq/move?to=other&state=ready&limit=10"},
		{"GET", "/v1/queues/nosuchq"},
	} {
		if code, body := do(t, c.method, d.base+c.path, "", nil); code != 404 || !strings.Contains(body, `"unknown_queue"`) {
			t.Errorf("%s %s: %d %s, want 404 unknown_queue", c.method, c.path, code, body)
		}
	}
	if code, body := do(t, "POST", d.base+"/v1/queues/nosuchq/lease", "", nil); code != 200 || !strings.Contains(body, `"jobs":[]`) {
		t.Errorf("lease on a queue that does not exist: %d %s, want 200 with no jobs", code, body)
	}
	// A long poll on a queue that does not exist yet gets the job that
	// creates it.
	got := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest("POST", d.base+"/v1/queues/later/lease?wait=10s", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	deadline := time.Now().Add(5 * time.Second)
poll:
	for {
		code, body := do(t, "POST", d.base+"/v1/queues/later/jobs", "hello", nil)
		if code != 201 {
			t.Fatalf("enqueue to later: %d %s", code, body)
		}
		select {
		case b := <-got:
			if !strings.Contains(b, `"payload_b64":"aGVsbG8="`) {
				t.Fatalf("long poll on a new queue answered %s, want the job", b)
			}
			break poll
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the long poll on a new queue did not get any of the jobs within 5s")
		}
	}

	drill := map[string]string{"Content-Type": "application/json"}
	if code, body := do(t, "POST", d.base+"/v1/governor/drill", `{"level":"critical","duration":"1m"}`, drill); code != 200 {
		t.Fatalf("drill: %d %s", code, body)
	}
	if code, body := do(t, "POST", d.base+"/v1/queues/shedq/jobs", "x", nil); code != 429 || !strings.Contains(body, `"shed"`) {
		t.Fatalf("enqueue at critical: %d %s, want 429 shed", code, body)
	}
	if code, body := do(t, "POST", d.base+"/v1/queues/badq/jobs?max_attempts=5000", "x", nil); code != 400 {
		t.Fatalf("invalid enqueue: %d %s, want 400", code, body)
	}
	_, body := do(t, "GET", d.base+"/v1/queues", "", nil)
	for _, q := range []string{"nosuchq", "other", "shedq", "badq"} {
		if strings.Contains(body, `"`+q+`"`) {
			t.Errorf("queue %s was created: %s", q, body)
		}
	}
}

// TestMaxQueuesAndMetricSeries (issue 14 item 5): past max_queues a job for
// a new queue is refused with 429 queue_full while existing queues take
// jobs, and /metrics keeps per-queue series for the configured queues and
// the deepest others only, summing the rest under queue="_other".
func TestMaxQueuesAndMetricSeries(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "edgeq.yaml")
	if err := os.WriteFile(conf, []byte("queues:\n  conf: {class: high}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const maxQueues = 80
	d := startDaemon(t, filepath.Join(dir, "data"), "--config", conf, "--max-queues", strconv.Itoa(maxQueues))
	enq := func(q string) (int, string) {
		return do(t, "POST", d.base+"/v1/queues/"+q+"/jobs", "x", nil)
	}
	for range 3 {
		if code, body := enq("deep"); code != 201 {
			t.Fatalf("enqueue deep: %d %s", code, body)
		}
	}
	for i := range maxQueues - 2 { // conf and deep exist
		if code, body := enq(fmt.Sprintf("q%02d", i)); code != 201 {
			t.Fatalf("enqueue q%02d: %d %s", i, code, body)
		}
	}
	code, body := enq("onemore")
	if code != 429 || !strings.Contains(body, `"queue_full"`) || !strings.Contains(body, "max_queues") {
		t.Fatalf("queue %d: %d %s, want 429 queue_full naming max_queues", maxQueues+1, code, body)
	}
	if code, body := enq("q00"); code != 201 {
		t.Fatalf("enqueue to an existing queue past the limit: %d %s", code, body)
	}
	if code, body := do(t, "GET", d.base+"/v1/queues/onemore", "", nil); code != 404 {
		t.Errorf("the refused queue exists: %d %s", code, body)
	}

	_, metrics := do(t, "GET", d.base+"/metrics", "", nil)
	queues := map[string]bool{}
	var otherReady float64
	for _, line := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(line, "edgeq_queue_depth{") {
			continue
		}
		q := line[strings.Index(line, `queue="`)+7:]
		q = q[:strings.IndexByte(q, '"')]
		queues[q] = true
		if q == "_other" && strings.Contains(line, `state="ready"`) {
			otherReady, _ = strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		}
	}
	for _, q := range []string{"conf", "deep", "_other"} {
		if !queues[q] {
			t.Errorf("no edgeq_queue_depth series for queue %q", q)
		}
	}
	// conf, deep + 49 more of the deepest, and _other.
	if len(queues) != 52 {
		t.Errorf("edgeq_queue_depth has series for %d queues, want 52", len(queues))
	}
	// Of the 78 queues q00..q77 (q00 holds 2 jobs, the others 1), q00..q48
	// have series; the 29 jobs of q49..q77 are summed.
	if otherReady != 29 {
		t.Errorf(`edgeq_queue_depth{queue="_other",state="ready"} = %g, want the jobs of the folded queues`, otherReady)
	}
	if !strings.Contains(metrics, `edgeq_jobs_rejected_total{queue="",reason="queue_full"} 1`) {
		t.Errorf(`the job refused for a new queue is not counted under queue=""`)
	}
}

// TestCrossSiteRequests (issue 14 item 8): with no token, a web page can
// neither change state (a foreign Origin or Sec-Fetch-Site is refused with
// 403 forbidden) nor read through DNS rebinding (a Host that is not one of
// the server's names is refused); JSON endpoints want a JSON content type.
func TestCrossSiteRequests(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "edgeq.yaml")
	if err := os.WriteFile(conf, []byte("http:\n  hosts: [edgeq.lan]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, filepath.Join(dir, "data"), "--config", conf)
	_, port, _ := strings.Cut(d.addr, ":")
	forbidden := func(what string, code int, body string) {
		t.Helper()
		if code != 403 || !strings.Contains(body, `"forbidden"`) {
			t.Errorf("%s: %d %s, want 403 forbidden", what, code, body)
		}
	}
	json := "application/json"
	code, body := do(t, "POST", d.base+"/v1/queues/csrf/jobs", "x", map[string]string{"Origin": "http://evil.example", "Content-Type": "text/plain"})
	forbidden("enqueue from a foreign Origin", code, body)
	code, body = do(t, "POST", d.base+"/v1/governor/drill", `{"level":"critical","duration":"1h"}`, map[string]string{"Origin": "http://evil.example", "Content-Type": json})
	forbidden("drill from a foreign Origin", code, body)
	code, body = do(t, "POST", d.base+"/v1/queues/csrf/lease?ttr=1s", "", map[string]string{"Sec-Fetch-Site": "cross-site"})
	forbidden("lease with Sec-Fetch-Site cross-site", code, body)
	code, body = do(t, "POST", d.base+"/v1/queues/csrf/pause", "", map[string]string{"Origin": "http://localhost:3000"})
	forbidden("pause from another origin on the same host", code, body)
	code, body = do(t, "GET", d.base+"/v1/stats", "", map[string]string{"Host": "rebind.evil.example:" + port})
	forbidden("read through a rebound DNS name", code, body)

	code, body = do(t, "POST", d.base+"/v1/governor/drill", `{"level":"critical","duration":"1h"}`, map[string]string{"Content-Type": "text/plain"})
	if code != 400 || !strings.Contains(body, "Content-Type") {
		t.Errorf("drill as text/plain: %d %s, want 400 naming Content-Type", code, body)
	}
	code, body = do(t, "POST", d.base+"/v1/queues/csrf/batch", `{"payload":1}`, map[string]string{"Content-Type": "text/plain"})
	if code != 400 || !strings.Contains(body, "Content-Type") {
		t.Errorf("batch as text/plain: %d %s, want 400 naming Content-Type", code, body)
	}
	if _, body := do(t, "GET", d.base+"/v1/stats", "", nil); !strings.Contains(body, `"drill":null`) || strings.Contains(body, `"csrf"`) {
		// The drill was refused (the level itself may rise on a loaded host).
		t.Fatalf("refused requests changed something: %s", body)
	}

	for _, c := range []struct {
		what, method, path, body string
		header                   map[string]string
		want                     int
	}{
		{"same-origin enqueue", "POST", "/v1/queues/ok/jobs", "x", map[string]string{"Origin": d.base, "Sec-Fetch-Site": "same-origin"}, 201},
		{"batch as NDJSON", "POST", "/v1/queues/ok/batch", `{"payload":1}`, map[string]string{"Content-Type": "application/x-ndjson"}, 201},
		{"Host localhost", "GET", "/v1/stats", "", map[string]string{"Host": "localhost:" + port}, 200},
		{"a configured host name", "GET", "/v1/stats", "", map[string]string{"Host": "EDGEQ.lan:" + port}, 200},
		{"health from any host", "GET", "/healthz", "", map[string]string{"Host": "rebind.evil.example"}, 200},
		{"a cross-site read", "GET", "/v1/stats", "", map[string]string{"Origin": "http://evil.example"}, 200},
	} {
		if code, body := do(t, c.method, d.base+c.path, c.body, c.header); code != c.want {
			t.Errorf("%s: %d %s, want %d", c.what, code, body, c.want)
		}
	}
}

// stallBody opens a connection and sends an enqueue's headers declaring
// size bytes, then only part of the body, and leaves it there. It asks for
// 100 Continue, which the server sends once the handler reads the body,
// that is once the body holds its share of the budget, and sends the part
// only then; a refusal instead fails the test.
func stallBody(t *testing.T, addr string, size, sent int) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /v1/queues/stall/jobs HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", addr, size)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	const cont = "HTTP/1.1 100 Continue\r\n\r\n"
	b := make([]byte, len(cont))
	if n, err := io.ReadFull(c, b); err != nil || string(b) != cont {
		rest, _ := io.ReadAll(io.LimitReader(c, 1024))
		t.Fatalf("a stalled body's headers: %q%s (%v), want 100 Continue", b[:n], rest, err)
	}
	c.SetReadDeadline(time.Time{})
	if _, err := c.Write(make([]byte, sent)); err != nil {
		t.Fatal(err)
	}
	return c
}

// cutOff reports whether the server has answered or closed c: a stalled
// body it cut off.
func cutOff(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	defer c.SetReadDeadline(time.Time{})
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout()
}

// overBudget opens n stalled bodies of size bytes, which then hold the
// budget, and sends one more body of that size. A byte sent to each
// stalled body before each step keeps it moving, so the idle timeout holds
// off; on a host so loaded that one was cut off all the same, the try is
// void and starts again with new ones. It answers the last try's status,
// body and Retry-After, and the stalled connections.
func overBudget(t *testing.T, d *daemon, n, size int) (code int, body, retryAfter string, stalled []net.Conn) {
	t.Helper()
	for attempt := 1; attempt <= 5; attempt++ {
		stalled = stalled[:0]
		for range n {
			for _, c := range stalled {
				c.Write([]byte{'x'})
			}
			stalled = append(stalled, stallBody(t, d.addr, size, size-1000))
		}
		for _, c := range stalled {
			c.Write([]byte{'x'})
		}
		req, _ := http.NewRequest("POST", d.base+"/v1/queues/other/jobs", strings.NewReader(strings.Repeat("x", size)))
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		code, body, retryAfter = resp.StatusCode, string(b), resp.Header.Get("Retry-After")
		if code != 201 || !slices.ContainsFunc(stalled, cutOff) {
			return code, body, retryAfter, stalled
		}
		t.Logf("try %d: a stalled body was cut off before the request past the budget (a loaded host); again", attempt)
		for _, c := range stalled {
			c.Close()
		}
	}
	return code, body, retryAfter, stalled
}

// TestBodiesInFlight (issue 14 item 6): the bytes of request bodies being
// read at once are bounded: past http.bodies_in_flight a request is refused
// with 503 unavailable and Retry-After before its body is read; a body that
// stops moving for http.body_idle_timeout is cut off and its share freed.
func TestBodiesInFlight(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "edgeq.yaml")
	if err := os.WriteFile(conf, []byte("max_payload: 1MiB\nhttp:\n  bodies_in_flight: 8MiB\n  body_idle_timeout: 3s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, filepath.Join(dir, "data"), "--config", conf)
	const size = 1 << 20
	// The stalled bodies hold the budget: a ninth is refused at once.
	code, body, retryAfter, stalled := overBudget(t, d, 8, size)
	if code != 503 || !strings.Contains(body, `"unavailable"`) || retryAfter == "" {
		t.Fatalf("a body past the budget: %d %s (Retry-After %q), want 503 unavailable with Retry-After", code, body, retryAfter)
	}
	// The stalled bodies are cut off after the idle timeout.
	for _, c := range stalled {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		b, _ := io.ReadAll(c)
		if len(b) > 0 && !strings.Contains(string(b), "stalled") {
			t.Errorf("a stalled body answered %q, want it cut off naming the stall", b)
		}
	}
	if code, body := do(t, "POST", d.base+"/v1/queues/other/jobs", strings.Repeat("x", size), nil); code != 201 {
		t.Fatalf("enqueue after the stalled bodies were cut off: %d %s", code, body)
	}
	if _, body := do(t, "GET", d.base+"/v1/queues", "", nil); strings.Contains(body, `"stall"`) {
		t.Errorf("a stalled body created its queue: %s", body)
	}
}

// TestMaxQueuesMQTT (issue 14 item 5): over MQTT, a message for a new queue
// past max_queues is refused with a queue_full notice and creates nothing.
func TestMaxQueuesMQTT(t *testing.T) {
	broker := "tcp://" + startMochi(t)
	conf := filepath.Join(t.TempDir(), "edgeq.yaml")
	if err := os.WriteFile(conf, []byte("max_queues: 3\nmqtt:\n  broker: "+broker+"\n  client_id: edgeq-maxq\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notices := make(chan string, 16)
	online := make(chan struct{}, 4)
	watcher := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("maxq-watch").
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			switch {
			case string(m.Payload()) == "online":
				online <- struct{}{}
			case strings.HasPrefix(m.Topic(), "edgeq/rejected/"):
				notices <- m.Topic() + " " + string(m.Payload())
			}
		}))
	if tok := watcher.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher connect: %v", tok.Error())
	}
	defer watcher.Disconnect(0)
	if tok := watcher.SubscribeMultiple(map[string]byte{"edgeq/status/edgeq-maxq": 1, "edgeq/rejected/#": 1}, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher subscribe: %v", tok.Error())
	}
	d := startDaemon(t, filepath.Join(t.TempDir(), "data"), "--config", conf)
	select {
	case <-online:
	case <-time.After(20 * time.Second):
		t.Fatalf("edgeq did not come online on the broker:\n%s", d.log)
	}
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("maxq-pub").SetCleanSession(true).SetAutoReconnect(false))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	defer pub.Disconnect(0)
	for _, q := range []string{"m1", "m2", "m3", "m4"} {
		if tok := pub.Publish("edgeq/jobs/"+q, 1, false, "x"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish to %s: %v", q, tok.Error())
		}
	}
	// edgeq takes the messages in any order: one of the four is refused.
	var refused string
	select {
	case n := <-notices:
		topic, _, _ := strings.Cut(n, " ")
		refused = strings.TrimPrefix(topic, "edgeq/rejected/")
		if !strings.Contains(n, `"queue_full"`) {
			t.Errorf("notice %s, want queue_full", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no rejection notice for the queue past max_queues")
	}
	var body string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, body = do(t, "GET", d.base+"/v1/queues", "", nil)
		if strings.Count(body, `"name"`) >= 3 || time.Now().After(deadline) {
			break
		}
	}
	if strings.Count(body, `"name"`) != 3 || strings.Contains(body, `"`+refused+`"`) {
		t.Errorf("queues after %s was refused: %s, want the 3 others", refused, body)
	}
	select {
	case n := <-notices:
		t.Errorf("a second notice: %s", n)
	default:
	}
}
