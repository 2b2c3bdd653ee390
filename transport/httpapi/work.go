package httpapi

import (
	"context"
	"net/http"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/wire"
)

// The workers' endpoints: lease, and what a lease holder does with a job.

// lease serves POST /v1/queues/{q}/lease. Shutdown ends its long poll. A
// body of acks (as POST /v1/acks takes) is acked in the lease's own engine
// op, each answered, before the jobs.
func (s *Server) lease(w http.ResponseWriter, r *http.Request) (any, error) {
	var maxArg, wait, ttr string
	if err := parseQuery(r.URL.RawQuery, param{"max", &maxArg}, param{"wait", &wait}, param{"ttr", &ttr}); err != nil {
		return nil, err
	}
	req := engine.LeaseRequest{Queue: r.PathValue("q")}
	var err error
	if req.Max, err = parseInt("max", maxArg, 1, engine.MaxLease, 1); err != nil {
		return nil, err
	}
	if req.Wait, err = wire.ParseDuration("wait", wait); err != nil {
		return nil, err
	}
	if req.Wait > engine.MaxLeaseWait {
		return nil, invalidArg("wait", "at most %s, got %q", engine.MaxLeaseWait, wait)
	}
	if req.TTR, err = wire.ParseDuration("ttr", ttr); err != nil {
		return nil, err
	}
	var acks []engine.AckRequest
	if r.ContentLength != 0 && r.Body != http.NoBody {
		if acks, err = s.readAcksBody(w, r, true); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.drainCtx, cancel)
	defer stop()
	if len(acks) == 0 {
		jobs, err := s.eng.Lease(ctx, req)
		if err != nil {
			return nil, err
		}
		return JobList{Jobs: wire.FromJobs(jobs, true)}, nil
	}
	errs, jobs, err := s.eng.AckLease(ctx, acks, req)
	if err != nil {
		return nil, err
	}
	return LeaseResult{Jobs: wire.FromJobs(jobs, true), Acks: ackResults(acks, errs)}, nil
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
// the lease is required and always params[0].
func leaseArgs(r *http.Request, params ...param) (job.ID, error) {
	id, err := jobID(r)
	if err != nil {
		return 0, err
	}
	if err := parseQuery(r.URL.RawQuery, params...); err != nil {
		return 0, err
	}
	if *params[0].val == "" {
		return 0, invalidArg("lease", "required (the lease id that /lease answered)")
	}
	return id, nil
}

func (s *Server) ack(w http.ResponseWriter, r *http.Request) (any, error) {
	var lease string
	id, err := leaseArgs(r, param{"lease", &lease})
	if err != nil {
		return nil, err
	}
	result, err := s.readAckResult(w, r)
	if err != nil {
		return nil, err
	}
	return OKResult{OK: true}, s.eng.Ack(r.Context(), id, lease, result)
}

func (s *Server) nack(w http.ResponseWriter, r *http.Request) (any, error) {
	var lease, delayArg, reason string
	id, err := leaseArgs(r, param{"lease", &lease}, param{"delay", &delayArg}, param{"error", &reason})
	if err != nil {
		return nil, err
	}
	// No delay: the queue's backoff; delay=0: now.
	delay := engine.NackBackoff
	if delayArg != "" {
		if delay, err = wire.ParseDuration("delay", delayArg); err != nil {
			return nil, err
		}
	}
	st, err := s.eng.Nack(r.Context(), id, lease, delay, reason)
	return StateResult{State: st.String()}, err
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request) (any, error) {
	var lease, reason string
	id, err := leaseArgs(r, param{"lease", &lease}, param{"error", &reason})
	if err != nil {
		return nil, err
	}
	return OKResult{OK: true}, s.eng.Fail(r.Context(), id, lease, reason)
}

func (s *Server) extend(w http.ResponseWriter, r *http.Request) (any, error) {
	var lease, ttrArg string
	id, err := leaseArgs(r, param{"lease", &lease}, param{"ttr", &ttrArg})
	if err != nil {
		return nil, err
	}
	ttr, err := wire.ParseDuration("ttr", ttrArg)
	if err != nil {
		return nil, err
	}
	exp, err := s.eng.Extend(r.Context(), id, lease, ttr)
	return ExtendResult{ExpiresAt: exp.UTC()}, err
}
