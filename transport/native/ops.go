package native

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/wire"
)

// Engine is what the native protocol needs of the engine: the job
// operations of the HTTP API; *engine.Engine satisfies it. Implementations
// must be safe for concurrent use. Payloads belong to the engine after
// Enqueue and EnqueueBatch.
type Engine interface {
	Enqueue(ctx context.Context, n job.New) (job.Result, error)
	// EnqueueBatch enqueues all of jobs or none.
	EnqueueBatch(ctx context.Context, queue string, jobs []job.New) ([]job.Result, error)
	// Refused counts n jobs for queue refused before they reached Enqueue
	// or EnqueueBatch.
	Refused(queue string, n int, err error)
	Lease(ctx context.Context, r engine.LeaseRequest) ([]*job.Job, error)
	Ack(ctx context.Context, id job.ID, lease string, result []byte) error
	AckBatch(ctx context.Context, acks []engine.AckRequest) ([]error, error)
	AckLease(ctx context.Context, acks []engine.AckRequest, r engine.LeaseRequest) ([]error, []*job.Job, error)
	Nack(ctx context.Context, id job.ID, lease string, delay time.Duration, reason string) (job.State, error)
	Fail(ctx context.Context, id job.ID, lease string, reason string) error
	Extend(ctx context.Context, id job.ID, lease string, ttr time.Duration) (time.Time, error)
}

// headerParam prefixes the parameters that are job headers.
const headerParam = "header."

// paramSpec is a parameter an op takes and where its value goes.
type paramSpec struct {
	name string
	val  *string
}

// setParams sets each spec named in ps; the last of repeated ones wins. An
// unknown name is refused rather than ignored, as over HTTP.
func setParams(ps []param, specs ...paramSpec) error {
	for _, p := range ps {
		i := 0
		for i < len(specs) && specs[i].name != p.name {
			i++
		}
		if i == len(specs) {
			return unknownParam(p.name, specs)
		}
		*specs[i].val = p.value
	}
	return nil
}

func unknownParam(name string, specs []paramSpec) error {
	if len(specs) == 0 {
		return wire.InvalidArg(name, "unknown parameter (this op takes none)")
	}
	names := make([]string, len(specs))
	for i := range specs {
		names[i] = specs[i].name
	}
	return wire.InvalidArg(name, "unknown parameter (want one of %s)", strings.Join(names, ", "))
}

// parseInt parses a decimal integer in [lo, hi]; "" is def.
func parseInt(field, v string, lo, hi, def int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		if hi == maxInt {
			return 0, wire.InvalidArg(field, "want an integer of at least %d, got %q", lo, v)
		}
		return 0, wire.InvalidArg(field, "want an integer from %d to %d, got %q", lo, hi, v)
	}
	return n, nil
}

const maxInt = int(^uint(0) >> 1)

// newJob builds an enqueue of queue from its parameters and payload, with
// the checks of the HTTP API's enqueue.
func (s *Server) newJob(queue string, ps []param, payload []byte) (job.New, error) {
	n := job.New{Queue: queue, ContentType: "application/octet-stream"}
	var delay, runAt, maxAttempts, ttr, expiresIn, expiresAt, ct string
	specs := []paramSpec{{"key", &n.Key}, {"delay", &delay}, {"run_at", &runAt},
		{"max_attempts", &maxAttempts}, {"ttr", &ttr}, {"expires_in", &expiresIn},
		{"expires_at", &expiresAt}, {"content_type", &ct}}
	var rest []param
	for _, p := range ps {
		name, ok := strings.CutPrefix(p.name, headerParam)
		if !ok {
			rest = append(rest, p)
			continue
		}
		if name == "" {
			return n, wire.InvalidArg(p.name, "header name is empty")
		}
		if n.Headers == nil {
			n.Headers = make(map[string]string, 4)
		}
		n.Headers[strings.ToLower(name)] = p.value
	}
	if err := setParams(rest, specs...); err != nil {
		return n, err
	}
	if ct != "" {
		n.ContentType = ct
	}
	if delay != "" && runAt != "" {
		return n, wire.ErrDelayAndRunAt
	}
	var err error
	if n.Delay, err = wire.ParseDuration("delay", delay); err != nil {
		return n, err
	}
	if n.RunAt, err = wire.ParseTime("run_at", runAt); err != nil {
		return n, err
	}
	if n.MaxAttempts, err = parseInt("max_attempts", maxAttempts, 0, maxInt, 0); err != nil {
		return n, err
	}
	if n.TTR, err = wire.ParseDuration("ttr", ttr); err != nil {
		return n, err
	}
	if n.ExpiresIn, err = wire.ParseDuration("expires_in", expiresIn); err != nil {
		return n, err
	}
	if n.ExpiresAt, err = wire.ParseTime("expires_at", expiresAt); err != nil {
		return n, err
	}
	if len(payload) > s.maxPayload {
		return n, &wire.FieldError{Field: "payload", Msg: fmt.Sprintf("%d bytes, above max_payload %d", len(payload), s.maxPayload), Sentinel: job.ErrTooLarge}
	}
	n.Payload = payload
	return n, nil
}

// enqueue serves op enqueue. The payload is the frame's own slice, which
// nothing else holds.
func (s *Server) enqueue(ctx context.Context, r request, b []byte) ([]byte, error) {
	n, err := s.newJob(r.target, r.params, r.data)
	if err != nil {
		s.eng.Refused(r.target, 1, err)
		return b, err
	}
	res, err := s.eng.Enqueue(ctx, n)
	if err != nil {
		return b, err
	}
	return appendResult(b, res), nil
}

func appendResult(b []byte, res job.Result) []byte {
	b = appendStr(b, res.ID.String())
	b = appendStr(b, res.State.String())
	flags := flagDurable
	if res.Duplicate {
		flags |= flagDuplicate
	}
	return append(b, flags)
}

// batch serves op batch: all jobs or none.
func (s *Server) batch(ctx context.Context, r request, b []byte) ([]byte, error) {
	news, err := s.batchJobs(r)
	if err != nil {
		s.eng.Refused(r.target, 1, err)
		return b, err
	}
	res, err := s.eng.EnqueueBatch(ctx, r.target, news)
	if err != nil {
		return b, err
	}
	b = binary.AppendUvarint(b, uint64(len(res)))
	for _, x := range res {
		b = appendResult(b, x)
	}
	return b, nil
}

func (s *Server) batchJobs(r request) ([]job.New, error) {
	if err := setParams(r.params); err != nil {
		return nil, err
	}
	d := decoder{b: r.data}
	n := d.count("jobs", 2)
	switch {
	case d.err != nil:
		return nil, wire.InvalidArg("jobs", "%v", d.err)
	case n == 0:
		return nil, wire.InvalidArg("jobs", "none (want at least one)")
	case n > engine.MaxBatchJobs:
		return nil, wire.InvalidArg("jobs", "%d, at most %d in one batch", n, engine.MaxBatchJobs)
	}
	news := make([]job.New, n)
	for i := range news {
		ps := d.params("params")
		payload := d.bytes("payload")
		if d.err != nil {
			return nil, wire.InvalidArg(fmt.Sprintf("jobs[%d]", i), "%v", d.err)
		}
		nj, err := s.newJob(r.target, ps, payload)
		if err != nil {
			return nil, fmt.Errorf("jobs[%d]: %w", i, err)
		}
		news[i] = nj
	}
	if d.end(); d.err != nil {
		return nil, wire.InvalidArg("jobs", "%v", d.err)
	}
	return news, nil
}

// lease serves op lease; Shutdown ends its long poll.
func (s *Server) lease(ctx context.Context, r request, b []byte) ([]byte, error) {
	var maxArg, wait, ttr string
	if err := setParams(r.params, paramSpec{"max", &maxArg}, paramSpec{"wait", &wait}, paramSpec{"ttr", &ttr}); err != nil {
		return b, err
	}
	req := engine.LeaseRequest{Queue: r.target}
	var err error
	if req.Max, err = parseInt("max", maxArg, 1, engine.MaxLease, 1); err != nil {
		return b, err
	}
	if req.Wait, err = wire.ParseDuration("wait", wait); err != nil {
		return b, err
	}
	if req.Wait > engine.MaxLeaseWait {
		return b, wire.InvalidArg("wait", "at most %s, got %q", engine.MaxLeaseWait, wait)
	}
	if req.TTR, err = wire.ParseDuration("ttr", ttr); err != nil {
		return b, err
	}
	var acks []engine.AckRequest
	if len(r.data) > 0 {
		if acks, err = decodeAckList(r.data, true); err != nil {
			return b, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.drainCtx, cancel)
	defer stop()
	var jobs []*job.Job
	if len(r.data) > 0 {
		var errs []error
		if errs, jobs, err = s.eng.AckLease(ctx, acks, req); err != nil {
			return b, err
		}
		b = s.appendAckAnswers(b, errs)
	} else if jobs, err = s.eng.Lease(ctx, req); err != nil {
		return b, err
	}
	b = binary.AppendUvarint(b, uint64(len(jobs)))
	for _, j := range jobs {
		b = appendJob(b, j)
	}
	return b, nil
}

// appendJob appends a leased job (docs/protocol.md §4).
func appendJob(b []byte, j *job.Job) []byte {
	b = appendStr(b, j.ID.String())
	b = appendStr(b, j.Queue)
	b = binary.AppendUvarint(b, uint64(max(j.Attempt, 0)))
	b = binary.AppendUvarint(b, uint64(max(j.MaxAttempts, 0)))
	b = appendTime(b, j.CreatedAt)
	b = appendTime(b, j.RunAt)
	b = appendTime(b, j.ExpiresAt)
	b = appendStr(b, j.Key)
	b = appendStr(b, j.LeaseID)
	b = appendTime(b, j.LeaseExpires)
	b = binary.AppendUvarint(b, uint64(len(j.Headers)))
	for k, v := range j.Headers {
		b = appendStr(b, k)
		b = appendStr(b, v)
	}
	b = appendStr(b, j.ContentType)
	b = appendStr(b, j.LastError)
	return appendBytes(b, j.Payload)
}

func noData(r request) error {
	if len(r.data) > 0 {
		return wire.InvalidArg("frame", "%d bytes after the last field", len(r.data))
	}
	return nil
}

// leaseArgs parses the target job id and the parameters of ack, nack,
// fail and extend; the lease is required and always specs[0].
func leaseArgs(r request, specs ...paramSpec) (job.ID, error) {
	id, err := job.ParseID(r.target)
	if err != nil {
		return 0, wire.InvalidArg("id", "want 16 hex digits, got %q", r.target)
	}
	if err := noData(r); err != nil {
		return 0, err
	}
	if err := setParams(r.params, specs...); err != nil {
		return 0, err
	}
	if *specs[0].val == "" {
		return 0, wire.InvalidArg("lease", "required (the lease id that lease answered)")
	}
	return id, nil
}

func (s *Server) ack(ctx context.Context, r request, b []byte) ([]byte, error) {
	var lease string
	id, err := leaseArgs(r, paramSpec{"lease", &lease})
	if err != nil {
		return b, err
	}
	return b, s.eng.Ack(ctx, id, lease, nil) // the native ack carries no result
}

func (s *Server) nack(ctx context.Context, r request, b []byte) ([]byte, error) {
	var lease, delayArg, reason string
	id, err := leaseArgs(r, paramSpec{"lease", &lease}, paramSpec{"delay", &delayArg}, paramSpec{"error", &reason})
	if err != nil {
		return b, err
	}
	delay := engine.NackBackoff // absent: the queue's backoff; 0: now
	if delayArg != "" {
		if delay, err = wire.ParseDuration("delay", delayArg); err != nil {
			return b, err
		}
	}
	st, err := s.eng.Nack(ctx, id, lease, delay, reason)
	if err != nil {
		return b, err
	}
	return appendStr(b, st.String()), nil
}

func (s *Server) fail(ctx context.Context, r request, b []byte) ([]byte, error) {
	var lease, reason string
	id, err := leaseArgs(r, paramSpec{"lease", &lease}, paramSpec{"error", &reason})
	if err != nil {
		return b, err
	}
	return b, s.eng.Fail(ctx, id, lease, reason)
}

func (s *Server) extend(ctx context.Context, r request, b []byte) ([]byte, error) {
	var lease, ttrArg string
	id, err := leaseArgs(r, paramSpec{"lease", &lease}, paramSpec{"ttr", &ttrArg})
	if err != nil {
		return b, err
	}
	ttr, err := wire.ParseDuration("ttr", ttrArg)
	if err != nil {
		return b, err
	}
	exp, err := s.eng.Extend(ctx, id, lease, ttr)
	if err != nil {
		return b, err
	}
	return appendTime(b, exp), nil
}

// acks serves op acks: one commit for all, an answer each.
func (s *Server) acks(ctx context.Context, r request, b []byte) ([]byte, error) {
	reqs, err := decodeAcks(r)
	if err != nil {
		return b, err
	}
	errs, err := s.eng.AckBatch(ctx, reqs)
	if err != nil {
		return b, err
	}
	return s.appendAckAnswers(b, errs), nil
}

// appendAckAnswers appends the answer of each ack by its error (nil:
// acked).
func (s *Server) appendAckAnswers(b []byte, errs []error) []byte {
	b = binary.AppendUvarint(b, uint64(len(errs)))
	for _, e := range errs {
		if e == nil {
			b = append(b, 1)
			continue
		}
		code, msg, retry := s.answer(e)
		b = append(b, 0)
		b = appendStr(b, code)
		b = appendStr(b, msg)
		b = binary.AppendUvarint(b, uint64(retry))
	}
	return b
}

func decodeAcks(r request) ([]engine.AckRequest, error) {
	if r.target != "" {
		return nil, wire.InvalidArg("target", "want none, got %q", r.target)
	}
	if err := setParams(r.params); err != nil {
		return nil, err
	}
	return decodeAckList(r.data, false)
}

// decodeAckList decodes a list of acks (docs/protocol.md §4, acks); none
// is refused unless allowNone.
func decodeAckList(data []byte, allowNone bool) ([]engine.AckRequest, error) {
	d := decoder{b: data}
	n := d.count("acks", 2)
	switch {
	case d.err != nil:
		return nil, wire.InvalidArg("acks", "%v", d.err)
	case n == 0 && !allowNone:
		return nil, wire.InvalidArg("acks", "none (want at least one id and lease)")
	case n > engine.MaxBatchJobs:
		return nil, wire.InvalidArg("acks", "%d, at most %d in one request", n, engine.MaxBatchJobs)
	}
	out := make([]engine.AckRequest, n)
	for i := range out {
		ids, lease := d.str("id"), d.str("lease")
		if d.err != nil {
			return nil, wire.InvalidArg(fmt.Sprintf("acks[%d]", i), "%v", d.err)
		}
		id, err := job.ParseID(ids)
		if err != nil {
			return nil, wire.InvalidArg(fmt.Sprintf("acks[%d].id", i), "want 16 hex digits, got %q", ids)
		}
		if lease == "" {
			return nil, wire.InvalidArg(fmt.Sprintf("acks[%d].lease", i), "required (the lease id that lease answered)")
		}
		out[i] = engine.AckRequest{ID: id, Lease: lease}
	}
	if d.end(); d.err != nil {
		return nil, wire.InvalidArg("acks", "%v", d.err)
	}
	return out, nil
}
