package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/wire"
)

// Limits of the list endpoints.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// maxPooledBuffer bounds the buffers kept for reuse, so that one large batch
// does not pin its buffer for the life of the process.
const maxPooledBuffer = 256 << 10

// enqueue serves POST /v1/queues/{q}/jobs: the hot path (see doc.go).
func (s *Server) enqueue(w http.ResponseWriter, r *http.Request) {
	n := job.New{Queue: r.PathValue("q")}
	if err := parseEnqueueQuery(r.URL.RawQuery, &n); err != nil {
		s.refuse(w, n.Queue, 1, err)
		return
	}
	var err error
	if n.Headers, err = jobHeaders(r.Header); err != nil {
		s.refuse(w, n.Queue, 1, err)
		return
	}
	n.ContentType = r.Header.Get("Content-Type")
	if n.ContentType == "" {
		n.ContentType = "application/octet-stream"
	}
	var bd *body
	if n.Payload, bd, err = s.readPayload(w, r); err != nil {
		s.refuse(w, n.Queue, 1, err)
		return
	}
	defer bd.release()
	res, err := s.eng.Enqueue(r.Context(), n)
	if err != nil {
		s.writeError(w, err)
		return
	}
	status := http.StatusCreated
	if res.Duplicate {
		status = http.StatusOK
	}
	bp := s.resps.Get().(*[]byte)
	b := appendResult((*bp)[:0], res)
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	_, _ = w.Write(b)
	*bp = b
	s.resps.Put(bp)
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

// refuse answers err for n jobs of queue that the server refused before
// the engine saw them, and has the engine count them.
func (s *Server) refuse(w http.ResponseWriter, queue string, n int, err error) {
	s.eng.Refused(queue, n, err)
	s.writeError(w, err)
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

// enqueueBatch serves POST /v1/queues/{q}/batch: all lines or none.
func (s *Server) enqueueBatch(w http.ResponseWriter, r *http.Request) {
	queue := r.PathValue("q")
	// A batch refused before its lines are decoded counts as one job.
	if err := parseQuery(r.URL.RawQuery, nil, nil); err != nil {
		s.refuse(w, queue, 1, err)
		return
	}
	if err := wantJSON(r, "application/x-ndjson", "application/ndjson", "application/json"); err != nil {
		s.refuse(w, queue, 1, err)
		return
	}
	limit := s.batchLimit()
	if r.ContentLength > limit {
		s.refuse(w, queue, 1, &wire.FieldError{Field: "body", Msg: fmt.Sprintf("%d bytes, above the batch limit of %d", r.ContentLength, limit), Sentinel: job.ErrTooLarge})
		return
	}
	b, err := s.openBody(w, r, limit)
	if err != nil {
		s.refuse(w, queue, 1, err)
		return
	}
	defer b.release()
	buf := s.bufs.Get().(*bytes.Buffer)
	defer s.putBuf(buf)
	err = s.readAll(buf, http.MaxBytesReader(w, b, limit))
	b.done()
	if err != nil {
		s.refuse(w, queue, 1, err)
		return
	}
	lines, err := decodeBatch(buf.Bytes(), s.maxPayload)
	if err != nil {
		s.refuse(w, queue, 1, err)
		return
	}
	news := make([]job.New, len(lines))
	for i := range lines {
		news[i] = lines[i].ToNew(queue)
	}
	res, err := s.eng.EnqueueBatch(r.Context(), queue, news)
	if err != nil {
		s.writeError(w, err)
		return
	}
	out := BatchResponse{Jobs: make([]BatchResult, len(res))}
	for i, r := range res {
		out.Jobs[i] = BatchResult{ID: r.ID.String(), State: r.State.String(), Durable: r.Durable, Duplicate: r.Duplicate}
	}
	s.writeJSON(w, http.StatusCreated, out)
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

// lease serves POST /v1/queues/{q}/lease. Shutdown ends its long poll.
func (s *Server) lease(w http.ResponseWriter, r *http.Request) {
	var v [3]string
	if err := parseQuery(r.URL.RawQuery, leaseParams, v[:]); err != nil {
		s.writeError(w, err)
		return
	}
	req := engine.LeaseRequest{Queue: r.PathValue("q")}
	var err error
	if req.Max, err = parseInt("max", v[0], 1, engine.MaxLease, 1); err != nil {
		s.writeError(w, err)
		return
	}
	if req.Wait, err = wire.ParseDuration("wait", v[1]); err != nil {
		s.writeError(w, err)
		return
	}
	if req.Wait > engine.MaxLeaseWait {
		s.writeError(w, invalidArg("wait", "at most %s, got %q", engine.MaxLeaseWait, v[1]))
		return
	}
	if req.TTR, err = wire.ParseDuration("ttr", v[2]); err != nil {
		s.writeError(w, err)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.drainCtx, cancel)
	defer stop()
	jobs, err := s.eng.Lease(ctx, req)
	if err != nil {
		s.writeError(w, err)
		return
	}
	s.writeJSON(w, http.StatusOK, JobList{Jobs: wire.FromJobs(jobs, true)})
}

// jobID parses the {id} path value.
func jobID(r *http.Request) (job.ID, error) { return parseJobID(r.PathValue("id")) }

func parseJobID(s string) (job.ID, error) {
	id, err := job.ParseID(s)
	if err != nil {
		return 0, invalidArg("id", "want 16 hex digits, got %q", s)
	}
	return id, nil
}

// leaseArgs parses the {id} and the query of ack, nack, fail and extend;
// lease is required and always vals[0].
func leaseArgs(r *http.Request, names, vals []string) (job.ID, error) {
	id, err := jobID(r)
	if err != nil {
		return 0, err
	}
	if err := parseQuery(r.URL.RawQuery, names, vals); err != nil {
		return 0, err
	}
	if vals[0] == "" {
		return 0, invalidArg("lease", "required (the lease id that /lease answered)")
	}
	return id, nil
}

func (s *Server) ack(w http.ResponseWriter, r *http.Request) {
	var v [1]string
	id, err := leaseArgs(r, ackParams, v[:])
	if err == nil {
		err = s.eng.Ack(r.Context(), id, v[0])
	}
	s.answer(w, err, OKResult{OK: true})
}

func (s *Server) nack(w http.ResponseWriter, r *http.Request) {
	var v [3]string
	id, err := leaseArgs(r, nackParams, v[:])
	if err != nil {
		s.writeError(w, err)
		return
	}
	// No delay: the queue's backoff; delay=0: now.
	delay := engine.NackBackoff
	if v[1] != "" {
		if delay, err = wire.ParseDuration("delay", v[1]); err != nil {
			s.writeError(w, err)
			return
		}
	}
	st, err := s.eng.Nack(r.Context(), id, v[0], delay, v[2])
	s.answer(w, err, StateResult{State: st.String()})
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request) {
	var v [2]string
	id, err := leaseArgs(r, failParams, v[:])
	if err == nil {
		err = s.eng.Fail(r.Context(), id, v[0], v[1])
	}
	s.answer(w, err, OKResult{OK: true})
}

func (s *Server) extend(w http.ResponseWriter, r *http.Request) {
	var v [2]string
	id, err := leaseArgs(r, extendParams, v[:])
	if err != nil {
		s.writeError(w, err)
		return
	}
	ttr, err := wire.ParseDuration("ttr", v[1])
	if err != nil {
		s.writeError(w, err)
		return
	}
	exp, err := s.eng.Extend(r.Context(), id, v[0], ttr)
	s.answer(w, err, ExtendResult{ExpiresAt: exp.UTC()})
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) {
	id, err := s.noQueryID(r)
	if err != nil {
		s.writeError(w, err)
		return
	}
	j, err := s.eng.Job(r.Context(), id)
	if err != nil {
		s.writeError(w, err)
		return
	}
	s.writeJSON(w, http.StatusOK, wire.FromJob(j, true))
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	id, err := s.noQueryID(r)
	if err == nil {
		err = s.eng.Cancel(r.Context(), id)
	}
	s.answer(w, err, OKResult{OK: true})
}

func (s *Server) noQueryID(r *http.Request) (job.ID, error) {
	if err := parseQuery(r.URL.RawQuery, nil, nil); err != nil {
		return 0, err
	}
	return jobID(r)
}

func (s *Server) listQueues(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, http.StatusOK, QueueList{Queues: queuesToWire(s.eng.Stats().Queues)})
}

func (s *Server) getQueue(w http.ResponseWriter, r *http.Request) {
	q, err := s.eng.QueueStats(r.PathValue("q"))
	if err != nil {
		s.writeError(w, err)
		return
	}
	s.writeJSON(w, http.StatusOK, queueStatsToWire(q))
}

func (s *Server) pause(w http.ResponseWriter, r *http.Request) {
	q := r.PathValue("q")
	s.answer(w, s.eng.Pause(r.Context(), q), PauseResult{Queue: q, Paused: true})
}

func (s *Server) resume(w http.ResponseWriter, r *http.Request) {
	q := r.PathValue("q")
	s.answer(w, s.eng.Resume(r.Context(), q), PauseResult{Queue: q, Paused: false})
}

func (s *Server) purge(w http.ResponseWriter, r *http.Request) {
	n, err := s.eng.Purge(r.Context(), r.PathValue("q"))
	s.answer(w, err, DeletedResult{Deleted: n})
}

func (s *Server) deadList(w http.ResponseWriter, r *http.Request) {
	var v [2]string
	if err := parseQuery(r.URL.RawQuery, deadListParams, v[:]); err != nil {
		s.writeError(w, err)
		return
	}
	limit, err := parseInt("limit", v[0], 1, maxListLimit, defaultListLimit)
	if err != nil {
		s.writeError(w, err)
		return
	}
	var after job.ID
	if v[1] != "" {
		if after, err = job.ParseID(v[1]); err != nil {
			s.writeError(w, invalidArg("after", "want a job id (16 hex digits), got %q", v[1]))
			return
		}
	}
	jobs, next, err := s.eng.DeadList(r.Context(), r.PathValue("q"), after, limit)
	if err != nil {
		s.writeError(w, err)
		return
	}
	out := JobList{Jobs: wire.FromJobs(jobs, false)}
	if next != 0 {
		out.Next = next.String()
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) deadRetry(w http.ResponseWriter, r *http.Request) {
	var v [1]string
	if err := parseQuery(r.URL.RawQuery, limitParams, v[:]); err != nil {
		s.writeError(w, err)
		return
	}
	limit, err := parseInt("limit", v[0], 1, maxListLimit, defaultListLimit)
	if err != nil {
		s.writeError(w, err)
		return
	}
	n, err := s.eng.DeadRetry(r.Context(), r.PathValue("q"), limit)
	s.answer(w, err, MovedResult{Moved: n})
}

func (s *Server) deadPurge(w http.ResponseWriter, r *http.Request) {
	n, err := s.eng.DeadPurge(r.Context(), r.PathValue("q"))
	s.answer(w, err, DeletedResult{Deleted: n})
}

// stats serves GET /v1/stats. The governor block is null when no governor
// is wired to the server.
func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	st := s.eng.Stats()
	gov, err := s.governorBlock()
	if err != nil {
		s.writeError(w, err)
		return
	}
	s.writeJSON(w, http.StatusOK, StatsDoc{
		Governor:   gov,
		Queues:     queuesToWire(st.Queues),
		UptimeS:    st.Uptime.Seconds(),
		StoreShort: st.StoreShort,
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, http.StatusOK, Health{Status: "ok"})
}

// readyz answers 200 while the engine accepts jobs, else 503 with the
// reason: an error, or at governor level critical the Readiness document.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.shutting.Load() {
		s.writeError(w, job.ErrShuttingDown)
		return
	}
	if err := s.eng.Ready(); err != nil {
		a := classify(err, false)
		if a.status != http.StatusServiceUnavailable {
			a = answer{status: http.StatusServiceUnavailable, code: "unavailable", message: err.Error(), retryAfter: a.retryAfter}
		}
		a.retryAfter = max(a.retryAfter, 1)
		writeAnswer(w, a)
		return
	}
	sh := s.eng.Shedding()
	doc := Readiness{Status: "ready", Level: sh.Level.String(), Paused: sh.Paused, Refused: sh.Refused}
	if sh.Level < job.LevelCritical {
		s.writeJSON(w, http.StatusOK, doc)
		return
	}
	doc.Status = "shedding"
	w.Header().Set("Retry-After", strconv.Itoa(int(engine.ShedRetryAfter.Seconds())))
	s.writeJSON(w, http.StatusServiceUnavailable, doc)
}

// answer writes err, or v with 200 when err is nil.
func (s *Server) answer(w http.ResponseWriter, err error, v any) {
	if err != nil {
		s.writeError(w, err)
		return
	}
	s.writeJSON(w, http.StatusOK, v)
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		s.log.Debug("write answer", "err", err)
	}
}
