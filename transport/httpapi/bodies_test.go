package httpapi

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBodiesPerConnection: HTTP/2 streams of one connection hold at most
// their connection's share of the body budget; past it a request is
// refused with 503 while another connection is served.
func TestBodiesPerConnection(t *testing.T) {
	certFile, keyFile, pool := selfSignedFiles(t)
	// A batch body is at most 1 MiB here; a connection may hold 2 MiB.
	ts := mustStartServer(t, Config{TLSCert: certFile, TLSKey: keyFile, MaxPayload: 16 << 10, MaxBodies: 8 << 20})
	if ts.bodies.perConn != 2<<20 {
		t.Fatalf("per-connection share %d, want 2 MiB", ts.bodies.perConn)
	}
	base := "https://" + ts.Addr().String()
	transport := func() *http.Transport {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
		t.Cleanup(tr.CloseIdleConnections)
		return tr
	}
	one := &http.Client{Transport: transport()}
	post := func(c *http.Client, body io.Reader, size int64) (*http.Response, error) {
		req, err := http.NewRequest("POST", base+"/v1/queues/b/batch", body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = size
		req.Header.Set("Content-Type", "application/x-ndjson")
		return c.Do(req)
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	for range 2 {
		pr, pw := io.Pipe()
		defer pw.CloseWithError(errors.New("test over"))
		wg.Go(func() {
			if resp, err := post(one, pr, 1<<20); err == nil {
				resp.Body.Close()
			}
		})
		if _, err := pw.Write([]byte(`{"payload":1}` + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for ts.bodies.used.Load() < 2<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("the two stalled bodies hold %d bytes after 5s, want 2 MiB", ts.bodies.used.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}

	small := `{"payload":1}` + "\n"
	resp, err := post(one, strings.NewReader(small), int64(len(small)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 503 || !strings.Contains(string(b), "this connection") || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a third body on the connection: HTTP/%d %d %s, want HTTP/2 503 naming the connection with Retry-After", resp.ProtoMajor, resp.StatusCode, b)
	}
	other := &http.Client{Transport: transport()}
	resp, err = post(other, strings.NewReader(small), int64(len(small)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Errorf("a body on another connection: %d, want 201", resp.StatusCode)
	}
}
