package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/wire"
)

// AckItem is one ack of POST /v1/acks: a job and the lease it is held under.
type AckItem struct {
	ID    string `json:"id"`
	Lease string `json:"lease"`
	// Result (any JSON value) or ResultB64 is the job's result, kept when
	// its queue retains done jobs (retain_done).
	Result    json.RawMessage `json:"result,omitempty"`
	ResultB64 []byte          `json:"result_b64,omitempty"`
}

// AcksRequest is the body of POST /v1/acks.
type AcksRequest struct {
	Acks []AckItem `json:"acks"`
}

// AckResult answers one ack of POST /v1/acks, in request order: Acked, or
// the error a single ack of that job would have answered.
type AckResult struct {
	ID    string     `json:"id"`
	Acked bool       `json:"acked"`
	Error *ErrorBody `json:"error,omitempty"`
}

// AcksResponse answers POST /v1/acks.
type AcksResponse struct {
	Acks []AckResult `json:"acks"`
}

// maxAcks bounds the acks of one request: the engine's batch limit.
const maxAcks = engine.MaxBatchJobs

// maxAcksBody bounds the body of POST /v1/acks: room for maxAcks items
// with long leases and some white space.
const maxAcksBody = 256 << 10

// acks serves POST /v1/acks: many acks in one engine op (one commit, one
// sync), each answered as a single ack would be. A body that is not a
// valid list of acks is refused whole and changes nothing.
func (s *Server) acks(w http.ResponseWriter, r *http.Request) (any, error) {
	reqs, err := s.readAcks(w, r)
	if err != nil {
		return nil, err
	}
	errs, err := s.eng.AckBatch(r.Context(), reqs)
	if err != nil {
		return nil, err
	}
	return AcksResponse{Acks: ackResults(reqs, errs)}, nil
}

// ackResults answers each of reqs by its error (nil: acked).
func ackResults(reqs []engine.AckRequest, errs []error) []AckResult {
	out := make([]AckResult, len(reqs))
	for i, e := range errs {
		out[i] = AckResult{ID: reqs[i].ID.String(), Acked: e == nil}
		if e != nil {
			a := classify(e, false)
			out[i].Error = &ErrorBody{Code: a.code, Message: a.message, RetryAfterS: a.retryAfter}
		}
	}
	return out
}

// AckBody is the optional body of POST /v1/jobs/{id}/ack: the job's
// result (see AckItem).
type AckBody struct {
	Result    json.RawMessage `json:"result,omitempty"`
	ResultB64 []byte          `json:"result_b64,omitempty"`
}

// maxAckBody bounds the body of a single ack: room for a result of the
// largest max_result (1 MiB) in base64; one past the queue's max_result is
// cut there anyway.
const maxAckBody = 2 << 20

// readAckResult reads the optional result of a single ack; no body, no
// result.
func (s *Server) readAckResult(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if err := wantJSON(r, "application/json"); err != nil {
		return nil, err
	}
	if r.ContentLength > maxAckBody {
		return nil, &wire.FieldError{Field: "body", Msg: fmt.Sprintf("%d bytes, above the limit of %d", r.ContentLength, maxAckBody), Sentinel: job.ErrTooLarge}
	}
	b, err := s.openBody(w, r, maxAckBody)
	if err != nil {
		return nil, err
	}
	defer b.release()
	buf := s.bufs.Get().(*bytes.Buffer)
	defer s.putBuf(buf)
	err = s.readAll(buf, http.MaxBytesReader(w, b, maxAckBody))
	b.done()
	if err != nil {
		return nil, err
	}
	if buf.Len() == 0 {
		return nil, nil
	}
	var req AckBody
	dec := json.NewDecoder(buf)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, invalidArg("body", "want {\"result\": <JSON>} or {\"result_b64\": \"...\"}: %v", err)
	}
	if dec.More() {
		return nil, invalidArg("body", "more than one JSON document")
	}
	return wire.ResultOf("body", req.Result, req.ResultB64) // the decoder copied them
}

// readAcks checks a POST /v1/acks request and decodes its body.
func (s *Server) readAcks(w http.ResponseWriter, r *http.Request) ([]engine.AckRequest, error) {
	if err := parseQuery(r.URL.RawQuery); err != nil {
		return nil, err
	}
	return s.readAcksBody(w, r, false)
}

// readAcksBody decodes a body of acks; none refused unless allowNone, and
// then an empty body (even chunked, without a Content-Type) is none.
func (s *Server) readAcksBody(w http.ResponseWriter, r *http.Request, allowNone bool) ([]engine.AckRequest, error) {
	typeChecked := !allowNone || r.ContentLength > 0
	if typeChecked {
		if err := wantJSON(r, "application/json"); err != nil {
			return nil, err
		}
	}
	if r.ContentLength > maxAcksBody {
		return nil, &wire.FieldError{Field: "body", Msg: fmt.Sprintf("%d bytes, above the limit of %d", r.ContentLength, maxAcksBody), Sentinel: job.ErrTooLarge}
	}
	b, err := s.openBody(w, r, maxAcksBody)
	if err != nil {
		return nil, err
	}
	defer b.release()
	buf := s.bufs.Get().(*bytes.Buffer)
	defer s.putBuf(buf)
	err = s.readAll(buf, http.MaxBytesReader(w, b, maxAcksBody))
	b.done()
	if err != nil {
		return nil, err
	}
	if !typeChecked {
		if buf.Len() == 0 {
			return nil, nil
		}
		if err := wantJSON(r, "application/json"); err != nil {
			return nil, err
		}
	}
	var req AcksRequest
	dec := json.NewDecoder(buf)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, invalidArg("body", "want {\"acks\":[{\"id\",\"lease\"}...]}: %v", err)
	}
	if dec.More() {
		return nil, invalidArg("body", "more than one JSON document")
	}
	switch {
	case len(req.Acks) == 0 && !allowNone:
		return nil, invalidArg("acks", "none (want at least one {\"id\",\"lease\"})")
	case len(req.Acks) > maxAcks:
		return nil, invalidArg("acks", "%d, at most %d in one request", len(req.Acks), maxAcks)
	}
	out := make([]engine.AckRequest, len(req.Acks))
	for i, a := range req.Acks {
		id, err := job.ParseID(a.ID)
		if err != nil {
			return nil, invalidArg(fmt.Sprintf("acks[%d].id", i), "want 16 hex digits, got %q", a.ID)
		}
		if a.Lease == "" {
			return nil, invalidArg(fmt.Sprintf("acks[%d].lease", i), "required (the lease id that /lease answered)")
		}
		result, err := wire.ResultOf(fmt.Sprintf("acks[%d]", i), a.Result, a.ResultB64)
		if err != nil {
			return nil, err
		}
		out[i] = engine.AckRequest{ID: id, Lease: a.Lease, Result: result}
	}
	return out, nil
}
