package e2e

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	code, body = do(t, "POST", d.base+"/v1/queues/hq/jobs", "x", map[string]string{"Edgeq-Header-Trace": "ä ok"})
	if code != 201 {
		t.Fatalf("valid UTF-8 header: %d %s, want 201", code, body)
	}
}
