package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// followUpJob is what the API shows of a job and its on_success.
type followUpJob struct {
	ID          string            `json:"id"`
	State       string            `json:"state"`
	Headers     map[string]string `json:"headers"`
	ContentType string            `json:"content_type"`
	Payload     json.RawMessage   `json:"payload"`
	PayloadB64  []byte            `json:"payload_b64"`
	LastError   string            `json:"last_error"`
	TraceParent string            `json:"traceparent"`
	Lease       *struct {
		ID string `json:"id"`
	} `json:"lease"`
	OnSuccess *struct {
		Queue      string          `json:"queue"`
		Payload    json.RawMessage `json:"payload"`
		PayloadB64 *[]byte         `json:"payload_b64"`
	} `json:"on_success"`
}

func (j followUpJob) body() string {
	if j.Payload != nil {
		return string(j.Payload)
	}
	return string(j.PayloadB64)
}

// leaseFollowUps leases up to 100 jobs of queue.
func (c *apiClient) leaseFollowUps(queue string) []followUpJob {
	c.t.Helper()
	var l struct {
		Jobs []followUpJob `json:"jobs"`
	}
	c.ok("POST", "/v1/queues/"+queue+"/lease?max=100", "", 200, &l)
	return l.Jobs
}

// TestFollowUpJobs (issue 20 item 5), against the real binary: on_success
// arrives by the enqueue query, a batch line and is shown by GET
// /v1/jobs/{id}; the success of a job (an ack with a result, /v1/acks, an
// ack in a lease request, an exec handler) enqueues its follow-up with the given payload or the
// result, the parent in edgeq-parent and the trace context carried; a
// follow-up that its queue has no room for is dead there and the ack
// still answers 200; bad input is a 400 naming the field that creates
// nothing.
func TestFollowUpJobs(t *testing.T) {
	_, c := apiDaemon(t, `
queues:
  convert: {}
  upload: {}
  tiny: {max_depth: 1}
  run:
    handler: {type: exec, command: ["sh", "-c", "cat >/dev/null; printf '{\"converted\":true}'"]}
`)
	const trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

	// The query form with the result as payload, the trace carried over.
	var res struct {
		ID string `json:"id"`
	}
	c.hdr = []string{"Traceparent", trace}
	c.ok("POST", "/v1/queues/convert/jobs?on_success=upload", "raw", 201, &res)
	c.hdr = nil
	var shown followUpJob
	c.ok("GET", "/v1/jobs/"+res.ID, "", 200, &shown)
	if shown.OnSuccess == nil || shown.OnSuccess.Queue != "upload" || shown.OnSuccess.Payload != nil || shown.OnSuccess.PayloadB64 != nil {
		t.Fatalf("GET /v1/jobs/%s: on_success %+v, want {queue: upload} and no payload", res.ID, shown.OnSuccess)
	}
	l := c.leaseFollowUps("convert")
	c.ok("POST", fmt.Sprintf("/v1/jobs/%s/ack?lease=%s", l[0].ID, l[0].Lease.ID), `{"result": {"url": "http://nas/1"}}`, 200, nil)
	f := c.leaseFollowUps("upload")
	if len(f) != 1 || f[0].body() != `{"url":"http://nas/1"}` || f[0].ContentType != "application/json" ||
		f[0].Headers["edgeq-parent"] != res.ID || f[0].TraceParent != trace {
		t.Fatalf("follow-up of an ack with a result: %+v, want the result as JSON, edgeq-parent %s, the traceparent", f, res.ID)
	}
	c.ok("POST", fmt.Sprintf("/v1/jobs/%s/ack?lease=%s", f[0].ID, f[0].Lease.ID), "", 200, nil)

	// A given payload (query), through /v1/acks.
	c.ok("POST", "/v1/queues/convert/jobs?on_success=upload&on_success_payload=hello", "raw", 201, nil)
	l = c.leaseFollowUps("convert")
	c.ok("POST", "/v1/acks", fmt.Sprintf(`{"acks":[{"id":%q,"lease":%q,"result":"ignored"}]}`, l[0].ID, l[0].Lease.ID), 200, nil)
	if f = c.leaseFollowUps("upload"); len(f) != 1 || f[0].body() != "hello" || f[0].ContentType != "application/octet-stream" {
		t.Fatalf("follow-up with a payload given: %+v, want \"hello\"", f)
	}

	// Acked in a lease request (ack and lease next in one commit).
	c.ok("POST", "/v1/queues/convert/jobs?on_success=upload", "raw", 201, nil)
	l = c.leaseFollowUps("convert")
	c.hdr = []string{"Content-Type", "application/json"}
	c.ok("POST", "/v1/queues/convert/lease", fmt.Sprintf(`{"acks":[{"id":%q,"lease":%q,"result":"leased-next"}]}`, l[0].ID, l[0].Lease.ID), 200, nil)
	c.hdr = nil
	if f = c.leaseFollowUps("upload"); len(f) != 1 || f[0].body() != `"leased-next"` {
		t.Fatalf("follow-up of an ack in a lease request: %+v, want \"leased-next\"", f)
	}

	// A batch line's on_success with a JSON payload.
	c.ok("POST", "/v1/queues/convert/batch", `{"payload":1,"on_success":{"queue":"upload","payload":{"to":"s3"}}}`+"\n", 201, nil)
	l = c.leaseFollowUps("convert")
	c.ok("POST", fmt.Sprintf("/v1/jobs/%s/ack?lease=%s", l[0].ID, l[0].Lease.ID), "", 200, nil)
	if f = c.leaseFollowUps("upload"); len(f) != 1 || f[0].body() != `{"to":"s3"}` {
		t.Fatalf("follow-up of a batch line: %+v, want {\"to\":\"s3\"}", f)
	}

	// An exec handler's stdout.
	c.ok("POST", "/v1/queues/run/jobs?on_success=upload", "in", 201, &res)
	deadline := time.Now().Add(10 * time.Second)
	for f = c.leaseFollowUps("upload"); len(f) == 0 && time.Now().Before(deadline); f = c.leaseFollowUps("upload") {
		time.Sleep(20 * time.Millisecond)
	}
	if len(f) != 1 || f[0].body() != `{"converted":true}` || f[0].Headers["edgeq-parent"] != res.ID {
		t.Fatalf("follow-up of an exec job: %+v, want its stdout", f)
	}

	// No room in the follow-up's queue: the ack answers 200, the follow-up
	// is dead there and says why.
	c.ok("POST", "/v1/queues/tiny/jobs", "filler", 201, nil)
	c.ok("POST", "/v1/queues/convert/jobs?on_success=tiny", "raw", 201, &res)
	l = c.leaseFollowUps("convert")
	c.ok("POST", fmt.Sprintf("/v1/jobs/%s/ack?lease=%s", l[0].ID, l[0].Lease.ID), `{"result":"r"}`, 200, nil)
	var dead struct {
		Jobs []followUpJob `json:"jobs"`
	}
	c.ok("GET", "/v1/queues/tiny/dead", "", 200, &dead)
	if len(dead.Jobs) != 1 || dead.Jobs[0].Headers["edgeq-parent"] != res.ID || !strings.Contains(dead.Jobs[0].LastError, "max_depth") {
		t.Fatalf("dead follow-ups in a full queue: %+v, want one naming max_depth", dead.Jobs)
	}

	// Bad input: a 400 naming the field, nothing created.
	var before, after struct {
		EnqueuedTotal int `json:"enqueued_total"`
	}
	c.ok("GET", "/v1/queues/convert", "", 200, &before)
	for _, tc := range []struct{ path, body, field string }{
		{"/v1/queues/convert/jobs?on_success=Bad!", "x", "on_success.queue"},
		{"/v1/queues/convert/jobs?on_success_payload=x", "x", "on_success_payload"},
		{"/v1/queues/convert/batch", `{"payload":1}` + "\n" + `{"payload":1,"on_success":{"queue":"upload","payload_b64":"%"}}` + "\n", "on_success.payload_b64"},
		{"/v1/queues/convert/batch", `{"payload":1,"on_success":{"quue":"upload"}}` + "\n", "on_success.quue"},
		{"/v1/queues/convert/batch", `{"payload":1,"on_success":{"queue":"UP"}}` + "\n", "on_success.queue"},
	} {
		a := c.refused("POST", tc.path, tc.body, 400, "invalid_argument")
		if !strings.Contains(a.msg, tc.field) {
			t.Errorf("POST %s: message %q does not name %s", tc.path, a.msg, tc.field)
		}
	}
	c.ok("GET", "/v1/queues/convert", "", 200, &after)
	if after.EnqueuedTotal != before.EnqueuedTotal {
		t.Errorf("refused enqueues created jobs: enqueued_total %d, then %d", before.EnqueuedTotal, after.EnqueuedTotal)
	}
}

// TestFollowUpSurvivesKill (issue 20 item 5): acks of jobs with a
// follow-up race a SIGKILL of the real binary; after a restart every job
// is either still there without a follow-up or gone with exactly one, and
// every ack that was answered 200 is among the gone.
func TestFollowUpSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	d := startDaemon(t, data)
	c := &apiClient{t: t, hc: &http.Client{Timeout: 10 * time.Second}, base: d.base}
	const n = 300
	var lines strings.Builder
	for i := range n {
		fmt.Fprintf(&lines, `{"payload":%d,"on_success":{"queue":"upload"}}`+"\n", i)
	}
	c.ok("POST", "/v1/queues/convert/batch", lines.String(), 201, nil)
	var held []followUpJob
	for len(held) < n {
		l := c.leaseFollowUps("convert")
		if len(l) == 0 {
			t.Fatalf("leased %d of %d jobs", len(held), n)
		}
		held = append(held, l...)
	}

	// Ack in batches of 10 from 6 goroutines; kill once a third is acked.
	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		wg    sync.WaitGroup
		next  = make(chan []followUpJob)
	)
	for range 6 {
		wg.Go(func() {
			for batch := range next {
				var body strings.Builder
				body.WriteString(`{"acks":[`)
				for i, j := range batch {
					if i > 0 {
						body.WriteString(",")
					}
					fmt.Fprintf(&body, `{"id":%q,"lease":%q,"result":%q}`, j.ID, j.Lease.ID, "r-"+j.ID)
				}
				body.WriteString("]}")
				req, _ := http.NewRequest("POST", d.base+"/v1/acks", strings.NewReader(body.String()))
				req.Header.Set("Content-Type", "application/json")
				resp, err := c.hc.Do(req)
				if err != nil {
					continue // the daemon was killed
				}
				var ans struct {
					Acks []struct {
						Acked bool `json:"acked"`
					} `json:"acks"`
				}
				err = json.NewDecoder(resp.Body).Decode(&ans)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || len(ans.Acks) != len(batch) {
					continue
				}
				mu.Lock()
				for i, a := range ans.Acks {
					if a.Acked {
						acked[batch[i].ID] = true
					}
				}
				mu.Unlock()
			}
		})
	}
	for i := 0; i < n; i += 10 {
		next <- held[i : i+10]
		mu.Lock()
		k := len(acked)
		mu.Unlock()
		if k >= n/3 {
			d.kill()
		}
	}
	close(next)
	wg.Wait()
	d.kill()
	if len(acked) == 0 || len(acked) == n {
		t.Fatalf("%d of %d acks answered before the kill: the kill did not race the acks", len(acked), n)
	}

	d = startDaemon(t, data)
	c.base = d.base
	parents := map[string]int{}
	for {
		f := c.leaseFollowUps("upload")
		if len(f) == 0 {
			break
		}
		for _, j := range f {
			p := j.Headers["edgeq-parent"]
			parents[p]++
			if want := `"r-` + p + `"`; j.body() != want {
				t.Errorf("follow-up of %s: payload %s, want %s", p, j.body(), want)
			}
		}
	}
	gone := 0
	for _, j := range held {
		a := c.do("GET", "/v1/jobs/"+j.ID, "")
		switch {
		case a.status == 404:
			gone++
			if parents[j.ID] != 1 {
				t.Errorf("job %s is gone with %d follow-ups, want 1", j.ID, parents[j.ID])
			}
		case a.status == 200:
			if acked[j.ID] {
				t.Errorf("job %s was acked (200) but is still there", j.ID)
			}
			if parents[j.ID] != 0 {
				t.Errorf("job %s is still there with %d follow-ups, want 0", j.ID, parents[j.ID])
			}
		default:
			t.Fatalf("GET /v1/jobs/%s: %d %s", j.ID, a.status, a.body)
		}
	}
	if len(parents) != gone {
		t.Errorf("%d follow-ups name %d parents, %d jobs are gone", len(parents), len(parents), gone)
	}
	t.Logf("%d acks answered before the kill, %d jobs acked durably, %d follow-ups", len(acked), gone, len(parents))
}
