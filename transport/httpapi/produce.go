package httpapi

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/wire"
)

// The producers' endpoints: single-job and batch enqueue.

// maxPooledBuffer bounds the buffers kept for reuse, so that one large batch
// does not pin its buffer for the life of the process.
const maxPooledBuffer = 256 << 10

// enqueue serves POST /v1/queues/{q}/jobs: the hot path (see doc.go).
func (s *Server) enqueue(w http.ResponseWriter, r *http.Request) (any, error) {
	n := job.New{Queue: r.PathValue("q")}
	if err := parseEnqueueQuery(r.URL.RawQuery, &n); err != nil {
		return nil, s.refused(n.Queue, 1, err)
	}
	var err error
	if n.Headers, err = jobHeaders(r.Header); err != nil {
		return nil, s.refused(n.Queue, 1, err)
	}
	n.TraceParent, n.TraceState = r.Header.Get("Traceparent"), r.Header.Get("Tracestate")
	n.ContentType = r.Header.Get("Content-Type")
	if n.ContentType == "" {
		n.ContentType = "application/octet-stream"
	}
	var bd *body
	if n.Payload, bd, err = s.readPayload(w, r); err != nil {
		return nil, s.refused(n.Queue, 1, err)
	}
	defer bd.release()
	res, err := s.eng.Enqueue(r.Context(), n)
	if err != nil {
		return nil, err
	}
	a := s.resps.Get().(*enqueued)
	a.status = http.StatusCreated
	if res.Duplicate || res.Replaced { // nothing created
		a.status = http.StatusOK
	}
	a.b = appendResult(a.b[:0], res)
	return a, nil
}

// readPayload reads a single job's body, at most maxPayload bytes, into a
// slice that the caller owns, under the body budget (bodies.go); the caller
// releases b once the engine answered. A body of known length is read
// straight into an exactly sized slice (its length was checked against the
// limit before reading, and net/http never delivers more than
// Content-Length); one of unknown length goes through http.MaxBytesReader
// and a pooled buffer.
func (s *Server) readPayload(w http.ResponseWriter, r *http.Request) ([]byte, *body, error) {
	limit := int64(s.maxPayload)
	if r.ContentLength > limit {
		return nil, nil, &wire.FieldError{Field: "body", Msg: fmt.Sprintf("%d bytes, above max_payload %d", r.ContentLength, limit), Sentinel: job.ErrTooLarge}
	}
	b, err := s.openBody(w, r, limit)
	if err != nil {
		return nil, nil, err
	}
	p, err := s.readBody(w, r, b, limit)
	b.done()
	if err != nil {
		b.release()
		return nil, nil, err
	}
	return p, b, nil
}

func (s *Server) readBody(w http.ResponseWriter, r *http.Request, b *body, limit int64) ([]byte, error) {
	if r.ContentLength >= 0 {
		p := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(b, p); err != nil {
			return nil, bodyError(err)
		}
		return p, nil
	}
	buf := s.bufs.Get().(*bytes.Buffer)
	defer s.putBuf(buf)
	if err := s.readAll(buf, http.MaxBytesReader(w, b, limit)); err != nil {
		return nil, err
	}
	return append([]byte{}, buf.Bytes()...), nil
}

// refused has the engine count n jobs of queue that the server refused
// with err before the engine saw them, and returns err to answer.
func (s *Server) refused(queue string, n int, err error) error {
	s.eng.Refused(queue, n, err)
	return err
}

func (s *Server) readAll(buf *bytes.Buffer, body io.Reader) error {
	if _, err := buf.ReadFrom(body); err != nil {
		return bodyError(err)
	}
	return nil
}

func (s *Server) putBuf(buf *bytes.Buffer) {
	if buf.Cap() > maxPooledBuffer {
		return
	}
	buf.Reset()
	s.bufs.Put(buf)
}

// batchLimit bounds a batch body: room for a few payloads of the maximum
// size, base64 included, and never less than 1 MiB.
func (s *Server) batchLimit() int64 { return max(8*int64(s.maxPayload), 1<<20) }

// enqueueBatch serves POST /v1/queues/{q}/batch: all lines or none. A
// batch refused before its lines are decoded counts as one job.
func (s *Server) enqueueBatch(w http.ResponseWriter, r *http.Request) (any, error) {
	queue := r.PathValue("q")
	lines, bd, err := s.readBatch(w, r)
	if err != nil {
		return nil, s.refused(queue, 1, err)
	}
	defer bd.release()
	news := make([]job.New, len(lines))
	for i := range lines {
		news[i] = lines[i].ToNew(queue)
	}
	res, err := s.eng.EnqueueBatch(r.Context(), queue, news)
	if err != nil {
		return nil, err
	}
	a := s.resps.Get().(*enqueued)
	a.status = http.StatusCreated
	a.b = appendBatchAnswer(a.b[:0], res)
	return a, nil
}

// readBatch checks a batch request and decodes its body under the body
// budget; the caller releases b once the engine answered.
func (s *Server) readBatch(w http.ResponseWriter, r *http.Request) ([]BatchLine, *body, error) {
	if err := parseQuery(r.URL.RawQuery); err != nil {
		return nil, nil, err
	}
	if err := wantJSON(r, "application/x-ndjson", "application/ndjson", "application/json"); err != nil {
		return nil, nil, err
	}
	limit := s.batchLimit()
	if r.ContentLength > limit {
		return nil, nil, &wire.FieldError{Field: "body", Msg: fmt.Sprintf("%d bytes, above the batch limit of %d", r.ContentLength, limit), Sentinel: job.ErrTooLarge}
	}
	b, err := s.openBody(w, r, limit)
	if err != nil {
		return nil, nil, err
	}
	buf := s.bufs.Get().(*bytes.Buffer)
	defer s.putBuf(buf)
	err = s.readAll(buf, http.MaxBytesReader(w, b, limit))
	b.done()
	var lines []BatchLine
	if err == nil {
		lines, err = decodeBatch(buf.Bytes(), s.maxPayload)
	}
	if err != nil {
		b.release()
		return nil, nil, err
	}
	return lines, b, nil
}

// wantJSON refuses a body whose Content-Type is none of types (nor a
// +json type): a web page may send text/plain or a form to another origin
// without asking first, never JSON.
func wantJSON(r *http.Request, types ...string) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (slices.Contains(types, mt) || strings.HasSuffix(mt, "+json")) {
		return nil
	}
	return invalidArg("Content-Type", "want %s, got %q", strings.Join(types, " or "), ct)
}
