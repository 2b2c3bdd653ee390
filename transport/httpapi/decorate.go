package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// handler is an endpoint: it answers what to write (a document written
// with 200, a withStatus, or an *enqueued) or an error. It writes no answer
// itself; decorate does.
type handler func(w http.ResponseWriter, r *http.Request) (any, error)

// withStatus is an answer other than a plain 200: its status, its document and,
// when retryAfter is above 0, a Retry-After in seconds.
type withStatus struct {
	status     int
	v          any
	retryAfter int
}

// enqueued is the hand-encoded answer of an enqueue, single-job or batch
// (the hot paths), pooled by the Server; decorate returns it to the pool
// once written, unless a large batch grew it beyond maxPooledBuffer.
type enqueued struct {
	status int
	b      []byte
}

// decorate makes h an http.HandlerFunc that writes what h answers: the one
// place that writes every endpoint's answers and errors (nsq's
// internal/http_api Decorate).
func (s *Server) decorate(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := h(w, r)
		if err != nil {
			s.writeError(w, err)
			return
		}
		s.write(w, v)
	}
}

// write writes a handler's answer.
func (s *Server) write(w http.ResponseWriter, v any) {
	switch v := v.(type) {
	case *enqueued:
		w.Header()["Content-Type"] = jsonContentType
		w.WriteHeader(v.status)
		_, _ = w.Write(v.b)
		if cap(v.b) <= maxPooledBuffer {
			s.resps.Put(v)
		}
	case answer:
		writeAnswer(w, v)
	case withStatus:
		if v.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(v.retryAfter))
		}
		s.writeJSON(w, v.status, v.v)
	default:
		s.writeJSON(w, http.StatusOK, v)
	}
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
