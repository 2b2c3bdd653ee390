package httpapi

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

func TestClientJobs(t *testing.T) {
	ts := mustStartServer(t, Config{Token: "tok"})
	c := ts.client(t, "tok")
	ctx := t.Context()

	runAt := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	res, err := c.Enqueue(ctx, "work", []byte(`{"a":1}`), EnqueueOptions{
		Key: "k", RunAt: runAt, MaxAttempts: 7, TTR: time.Minute, ExpiresIn: time.Hour,
		Headers: map[string]string{"Trace-ID": "t1"}, ContentType: "application/json",
	})
	if err != nil {
		t.Fatal(err)
	}
	if res != (EnqueueResult{ID: "0000000000000001", Queue: "work", State: "delayed", Durable: true}) {
		t.Errorf("Enqueue = %+v", res)
	}
	news, _ := ts.eng.received()
	n := news[0]
	if n.Key != "k" || n.Delay != 0 || !n.RunAt.Equal(runAt) || n.MaxAttempts != 7 || n.TTR != time.Minute ||
		n.ExpiresIn != time.Hour || n.ContentType != "application/json" || !maps.Equal(n.Headers, map[string]string{"trace-id": "t1"}) {
		t.Errorf("engine got %+v", n)
	}
	res, err = c.Enqueue(ctx, "work", nil, EnqueueOptions{Key: "k", Delay: time.Second})
	if err != nil || !res.Duplicate || res.ID != "0000000000000001" {
		t.Errorf("duplicate Enqueue = %+v, %v", res, err)
	}
	if news, _ := ts.eng.received(); len(news) != 2 || news[1].Delay != time.Second {
		t.Errorf("engine got %+v, want a second job with a delay of 1s", news)
	}

	br, err := c.EnqueueBatch(ctx, "work", []BatchLine{
		{Payload: []byte("{\n  \"b\": 2\n}"), EnqueueOptions: EnqueueOptions{ContentType: "application/json", Headers: map[string]string{"X": "y"}}},
		{Payload: []byte{0xff, 0}, EnqueueOptions: EnqueueOptions{Key: "bk"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(br) != 2 || br[0].ID != "0000000000000002" || br[1].State != "ready" || !br[1].Durable {
		t.Errorf("EnqueueBatch = %+v", br)
	}
	news, _ = ts.eng.received()
	if n := news[len(news)-2]; string(n.Payload) != `{"b":2}` || n.ContentType != "application/json" || n.Headers["x"] != "y" {
		t.Errorf("batch line 1 reached the engine as %+v", n)
	}
	if n := news[len(news)-1]; !bytes.Equal(n.Payload, []byte{0xff, 0}) || n.ContentType != "application/octet-stream" || n.Key != "bk" {
		t.Errorf("batch line 2 reached the engine as %+v", n)
	}

	jobs, err := c.Lease(ctx, "work", 10, 0, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 {
		t.Fatalf("Lease = %d jobs, want the 2 ready ones", len(jobs))
	}
	if string(jobs[0].Body()) != `{"b":2}` || jobs[0].Payload == nil || !bytes.Equal(jobs[1].Body(), []byte{0xff, 0}) || jobs[1].Payload != nil {
		t.Errorf("leased payloads %q %q", jobs[0].Body(), jobs[1].Body())
	}
	if jobs[0].Lease == nil || jobs[0].Lease.ExpiresAt.IsZero() {
		t.Errorf("no lease on %+v", jobs[0])
	}
	if empty, err := c.Lease(ctx, "work", 0, 0, 0); err != nil || len(empty) != 0 || empty == nil {
		t.Errorf("empty Lease = %v (nil %t), %v", empty, empty == nil, err)
	}

	a, b := jobs[0], jobs[1]
	exp, err := c.Extend(ctx, a.ID, a.Lease.ID, 45*time.Second)
	if err != nil || !exp.Equal(ts.eng.now.Add(45*time.Second)) {
		t.Errorf("Extend = %v, %v", exp, err)
	}
	if st, err := c.Nack(ctx, a.ID, a.Lease.ID, 10*time.Second, "flaky"); err != nil || st != "delayed" {
		t.Errorf("Nack = %q, %v", st, err)
	}
	if err := c.Ack(ctx, b.ID, b.Lease.ID); err != nil {
		t.Errorf("Ack: %v", err)
	}
	got, err := c.Job(ctx, a.ID)
	if err != nil || got.State != "delayed" || got.LastError != "flaky" || got.Attempt != 1 {
		t.Errorf("Job = %+v, %v", got, err)
	}

	var apiErr *APIError
	if err := c.Ack(ctx, b.ID, b.Lease.ID); err != nil {
		t.Errorf("Ack repeated with the same lease = %v, want nil", err)
	}
	err = c.Ack(ctx, "0000000000000fff", "L")
	if !errors.As(err, &apiErr) || apiErr.Status != 404 || apiErr.Code != "not_found" || !errors.Is(err, job.ErrNotFound) {
		t.Errorf("Ack of an unknown job = %v", err)
	}
	err = c.Ack(ctx, a.ID, "stale")
	if !errors.As(err, &apiErr) || apiErr.Status != 409 || apiErr.Code != "lease_lost" || apiErr.Temporary() || !errors.Is(err, job.ErrLeaseLost) {
		t.Errorf("Ack with a stale lease = %#v", err)
	}
	if got := err.Error(); got != "lease_lost: lease lost (HTTP 409)" {
		t.Errorf("Error() = %q", got)
	}

	ts.eng.put(job.Job{ID: 0x100, Queue: "work", State: job.StateLeased, LeaseID: "F", MaxAttempts: 5})
	if err := c.Fail(ctx, "0000000000000100", "F", "bad input"); err != nil {
		t.Errorf("Fail: %v", err)
	}
	if j, _ := ts.eng.Job(ctx, 0x100); j.State != job.StateDead || j.LastError != "bad input" {
		t.Errorf("after Fail: %v %q", j.State, j.LastError)
	}
	if err := c.Cancel(ctx, a.ID); err != nil {
		t.Errorf("Cancel: %v", err)
	}
	if _, err := c.Job(ctx, a.ID); !errors.Is(err, job.ErrNotFound) {
		t.Errorf("Job after Cancel = %v", err)
	}

	if _, err := c.Job(ctx, "nope"); !errors.Is(err, job.ErrInvalidArgument) {
		t.Errorf("Job(nope) = %v, want invalid argument before any request", err)
	}
	if _, err := c.Enqueue(ctx, "", nil, EnqueueOptions{}); !errors.Is(err, job.ErrInvalidQueue) {
		t.Errorf("Enqueue to \"\" = %v", err)
	}
	if _, err := c.Enqueue(ctx, "Bad Queue", nil, EnqueueOptions{}); !errors.As(err, &apiErr) || apiErr.Code != "invalid_queue" {
		t.Errorf("Enqueue to a bad name = %v", err)
	}
}

func TestClientQueues(t *testing.T) {
	ts := mustStartServer(t, Config{})
	c := ts.client(t, "")
	ctx := t.Context()
	for _, st := range []job.State{job.StateReady, job.StateDelayed, job.StateDead, job.StateDead, job.StateDead} {
		ts.eng.put(job.Job{Queue: "q", State: st, Payload: []byte("p")})
	}

	qs, err := c.Queues(ctx)
	if err != nil || len(qs) != 1 || qs[0].Name != "q" || qs[0].Dead != 3 {
		t.Errorf("Queues = %+v, %v", qs, err)
	}
	q, err := c.Queue(ctx, "q")
	if err != nil || q.Ready != 1 || q.Delayed != 1 || q.Class != "normal" {
		t.Errorf("Queue = %+v, %v", q, err)
	}
	if _, err := c.Queue(ctx, "other"); !errors.Is(err, job.ErrNotFound) {
		t.Errorf("Queue(other) = %v", err)
	}
	doc, err := c.Stats(ctx)
	if err != nil || doc.Governor != nil || doc.UptimeS != 90 || len(doc.Queues) != 1 {
		t.Errorf("Stats = %+v, %v", doc, err)
	}
	if err := c.Pause(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	if q, _ := c.Queue(ctx, "q"); !q.Paused {
		t.Error("Pause did not pause")
	}
	if err := c.Resume(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	if q, _ := c.Queue(ctx, "q"); q.Paused {
		t.Error("Resume did not resume")
	}

	page, next, err := c.DeadList(ctx, "q", "", 2)
	if err != nil || len(page) != 2 || next == "" {
		t.Fatalf("DeadList = %d jobs, next %q, %v", len(page), next, err)
	}
	page, next, err = c.DeadList(ctx, "q", next, 0)
	if err != nil || len(page) != 1 || next != "" {
		t.Errorf("DeadList page 2 = %d jobs, next %q, %v", len(page), next, err)
	}
	if n, err := c.DeadRetry(ctx, "q", 1); err != nil || n != 1 {
		t.Errorf("DeadRetry = %d, %v", n, err)
	}
	if n, err := c.DeadPurge(ctx, "q"); err != nil || n != 2 {
		t.Errorf("DeadPurge = %d, %v", n, err)
	}
	if n, err := c.Purge(ctx, "q"); err != nil || n != 3 {
		t.Errorf("Purge = %d, %v (ready, delayed and the retried one)", n, err)
	}
	if err := c.Healthz(ctx); err != nil {
		t.Errorf("Healthz: %v", err)
	}
	if err := c.Readyz(ctx); err != nil {
		t.Errorf("Readyz: %v", err)
	}
}

func TestClientErrors(t *testing.T) {
	ts := mustStartServer(t, Config{Token: "tok"})
	ctx := t.Context()
	var apiErr *APIError

	err := ts.client(t, "").Healthz(ctx)
	if err != nil {
		t.Errorf("Healthz without a token: %v", err)
	}
	_, err = ts.client(t, "wrong").Queues(ctx)
	if !errors.As(err, &apiErr) || apiErr.Status != 401 || apiErr.Code != "unauthorized" || apiErr.Temporary() {
		t.Errorf("wrong token = %v", err)
	}

	c := ts.client(t, "tok")
	for _, tc := range []struct {
		err       error
		status    int
		code      string
		retry     time.Duration
		temporary bool
		sentinel  error
	}{
		{job.Retry(job.ErrQueueFull, 2500*time.Millisecond), 429, "queue_full", 3 * time.Second, true, job.ErrQueueFull},
		{job.ErrRateLimited, 429, "rate_limited", time.Second, true, job.ErrRateLimited},
		{job.Retry(job.ErrShed, 30*time.Second), 429, "shed", 30 * time.Second, true, job.ErrShed},
		{job.ErrDiskFull, 503, "disk_full", time.Second, true, job.ErrDiskFull},
		{job.ErrUnavailable, 503, "unavailable", time.Second, true, job.ErrUnavailable},
		{job.ErrTooLarge, 413, "payload_too_large", 0, false, job.ErrTooLarge},
		{job.ErrUnknownQueue, 404, "unknown_queue", 0, false, job.ErrUnknownQueue},
		{errors.New("boom"), 500, "internal", 0, false, nil},
	} {
		ts.eng.setErr("Enqueue", tc.err)
		_, err := c.Enqueue(ctx, "q", []byte("x"), EnqueueOptions{})
		if !errors.As(err, &apiErr) {
			t.Fatalf("%v: got %v, want *APIError", tc.err, err)
		}
		if apiErr.Status != tc.status || apiErr.Code != tc.code || apiErr.RetryAfter != tc.retry || apiErr.Temporary() != tc.temporary || apiErr.Message == "" {
			t.Errorf("%v: got %+v (temporary %t)", tc.err, apiErr, apiErr.Temporary())
		}
		if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
			t.Errorf("%v: errors.Is(%v) false", tc.err, tc.sentinel)
		}
	}

	// An answer that did not come from edgeq (a proxy in the way).
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		http.Error(w, "<html>upstream down</html>", http.StatusBadGateway)
	}))
	defer proxy.Close()
	pc := NewClient(proxy.URL+"/", "", nil)
	defer pc.CloseIdleConnections()
	err = pc.Healthz(ctx)
	if !errors.As(err, &apiErr) || apiErr.Status != 502 || apiErr.Code != "bad_gateway" ||
		apiErr.Message != "<html>upstream down</html>" || apiErr.RetryAfter != 7*time.Second || apiErr.Temporary() {
		t.Errorf("proxy answer = %#v", err)
	}
}

func TestTLS(t *testing.T) {
	certFile, keyFile, pool := selfSignedFiles(t)
	ts := mustStartServer(t, Config{TLSCert: certFile, TLSKey: keyFile})
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	c := NewClient("https://"+ts.Addr().String(), "", hc)
	defer c.CloseIdleConnections()
	if _, err := c.Enqueue(t.Context(), "q", []byte("x"), EnqueueOptions{}); err != nil {
		t.Fatalf("Enqueue over TLS: %v", err)
	}
	plain := ts.client(t, "")
	if err := plain.Healthz(t.Context()); err == nil {
		t.Error("plain HTTP to the TLS listener succeeded")
	}
}

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
// selfSignedFiles writes a selfSigned certificate and its key to files of
// a temporary directory.
func selfSignedFiles(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	certPEM, keyPEM, pool := selfSigned(t)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "edgeq test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), pool
}
