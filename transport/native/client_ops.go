package native

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/httpapi"
	"github.com/edgeq/edgeq/transport/wire"
)

// The job operations of Client.

// Enqueue enqueues one job, answered once it is durable; a duplicate key
// answers the first job's id with Duplicate set. With Coalesce,
// concurrent calls for a queue share batch frames.
func (c *Client) Enqueue(ctx context.Context, queue string, payload []byte, o httpapi.EnqueueOptions) (httpapi.EnqueueResult, error) {
	if o.OnSuccess != nil {
		return httpapi.EnqueueResult{}, errNoOnSuccess
	}
	if c.coalesce && len(payload) <= coalesceMaxPayload {
		return c.enqueueCoalesced(ctx, queue, payload, o)
	}
	return c.enqueueOne(ctx, queue, payload, o)
}

// enqueueOne enqueues one job in a frame of its own.
func (c *Client) enqueueOne(ctx context.Context, queue string, payload []byte, o httpapi.EnqueueOptions) (httpapi.EnqueueResult, error) {
	body, err := c.call(ctx, opEnqueue, queue, enqueueParams(nil, &o), payload)
	if err != nil {
		return httpapi.EnqueueResult{}, err
	}
	d := decoder{b: body}
	r := decodeResult(&d)
	if d.end(); d.err != nil {
		return httpapi.EnqueueResult{}, fmt.Errorf("native enqueue: decode answer: %w", d.err)
	}
	return httpapi.EnqueueResult{ID: r.ID, Queue: queue, State: r.State, Durable: r.Durable, Duplicate: r.Duplicate}, nil
}

func decodeResult(d *decoder) httpapi.BatchResult {
	var r httpapi.BatchResult
	r.ID = d.str("id")
	r.State = d.str("state")
	f := d.byte1("flags")
	r.Durable, r.Duplicate = f&flagDurable != 0, f&flagDuplicate != 0
	return r
}

// errNoOnSuccess refuses a follow-up, which the protocol does not carry.
var errNoOnSuccess = &wire.FieldError{Field: "on_success", Msg: "the native protocol does not carry a follow-up: enqueue it over HTTP", Sentinel: job.ErrInvalidArgument}

// enqueueParams appends the parameters of options o.
func enqueueParams(ps []param, o *httpapi.EnqueueOptions) []param {
	add := func(name, v string) {
		if v != "" {
			ps = append(ps, param{name, v})
		}
	}
	dur := func(name string, d time.Duration) {
		if d != 0 {
			add(name, d.String())
		}
	}
	tm := func(name string, t time.Time) {
		if !t.IsZero() {
			add(name, t.Format(time.RFC3339Nano))
		}
	}
	add("key", o.Key)
	dur("delay", o.Delay)
	tm("run_at", o.RunAt)
	if o.MaxAttempts != 0 {
		add("max_attempts", strconv.Itoa(o.MaxAttempts))
	}
	dur("ttr", o.TTR)
	dur("expires_in", o.ExpiresIn)
	tm("expires_at", o.ExpiresAt)
	add("content_type", o.ContentType)
	for k, v := range o.Headers {
		ps = append(ps, param{headerParam + k, v})
	}
	return ps
}

// EnqueueBatch enqueues all lines or none; results are in line order.
func (c *Client) EnqueueBatch(ctx context.Context, queue string, lines []httpapi.BatchLine) ([]httpapi.BatchResult, error) {
	for i := range lines {
		if lines[i].OnSuccess != nil {
			return nil, fmt.Errorf("job %d: %w", i+1, errNoOnSuccess)
		}
	}
	data := binary.AppendUvarint(nil, uint64(len(lines)))
	var ps []param
	for _, l := range lines {
		ps = enqueueParams(ps[:0], &l.EnqueueOptions)
		data = appendParams(data, ps)
		data = appendBytes(data, l.Payload)
	}
	body, err := c.call(ctx, opBatch, queue, nil, data)
	if err != nil {
		return nil, err
	}
	d := decoder{b: body}
	n := d.count("jobs", 3)
	out := make([]httpapi.BatchResult, n)
	for i := range out {
		out[i] = decodeResult(&d)
	}
	if d.end(); d.err != nil {
		return nil, fmt.Errorf("native batch: decode answer: %w", d.err)
	}
	return out, nil
}

// Lease leases up to max jobs (0: 1), waiting up to wait for the first one;
// ttr 0 is the queue's. It answers an empty list when none came in time.
func (c *Client) Lease(ctx context.Context, queue string, max int, wait, ttr time.Duration) ([]httpapi.Job, error) {
	body, err := c.call(ctx, opLease, queue, leaseParams(max, wait, ttr), nil)
	if err != nil {
		return nil, err
	}
	d := decoder{b: body}
	jobs := decodeJobs(&d)
	if d.end(); d.err != nil {
		return nil, fmt.Errorf("native lease: decode answer: %w", d.err)
	}
	return jobs, nil
}

// AckLease acks the jobs a worker finished and leases its next ones in one
// request (a lease carrying the acks, docs/protocol.md §4): one commit and
// one fsync on the daemon for both. It answers as
// httpapi.Client.AckLease does. Without acks it is Lease.
func (c *Client) AckLease(ctx context.Context, queue string, max int, wait, ttr time.Duration, acks []httpapi.AckItem) ([]httpapi.Job, []error, error) {
	if len(acks) == 0 {
		jobs, err := c.Lease(ctx, queue, max, wait, ttr)
		return jobs, nil, err
	}
	body, err := c.call(ctx, opLease, queue, leaseParams(max, wait, ttr), ackData(acks))
	if err != nil {
		return nil, nil, err
	}
	d := decoder{b: body}
	errs := decodeAckAnswers(&d, len(acks))
	jobs := decodeJobs(&d)
	if d.end(); d.err != nil {
		return nil, nil, fmt.Errorf("native lease: decode answer: %w", d.err)
	}
	return jobs, errs, nil
}

// leaseParams are the parameters of a lease; zero values are left out.
func leaseParams(max int, wait, ttr time.Duration) []param {
	var ps []param
	if max != 0 {
		ps = append(ps, param{"max", strconv.Itoa(max)})
	}
	if wait != 0 {
		ps = append(ps, param{"wait", wait.String()})
	}
	if ttr != 0 {
		ps = append(ps, param{"ttr", ttr.String()})
	}
	return ps
}

// decodeJobs decodes the jobs of a lease answer (docs/protocol.md §4); d
// holds the first error.
func decodeJobs(d *decoder) []httpapi.Job {
	n := d.count("jobs", 16)
	jobs := make([]httpapi.Job, n)
	for i := range jobs {
		j := &jobs[i]
		j.ID = d.str("id")
		j.Queue = d.str("queue")
		j.State = job.StateLeased.String()
		j.Attempt = int(d.uvarint("attempt"))
		j.MaxAttempts = int(d.uvarint("max_attempts"))
		j.CreatedAt = d.time("created_at")
		j.RunAt = d.time("run_at")
		j.ExpiresAt = d.time("expires_at")
		j.Key = d.str("key")
		lease := wire.Lease{ID: d.str("lease_id"), ExpiresAt: d.time("lease_expires_at")}
		j.Lease = &lease
		h := d.count("headers", 2)
		j.Headers = make(map[string]string, h)
		for range h {
			k := d.str("header name")
			j.Headers[k] = d.str("header value")
		}
		j.ContentType = d.str("content_type")
		j.LastError = d.str("last_error")
		p := d.bytes("payload")
		if d.err != nil {
			break
		}
		p = append([]byte{}, p...)
		if wire.IsJSONType(j.ContentType) && json.Valid(p) {
			j.Payload = p
		} else {
			j.PayloadB64 = p
		}
	}
	return jobs
}

// Ack marks a leased job done.
func (c *Client) Ack(ctx context.Context, id, lease string) error {
	_, err := c.call(ctx, opAck, id, []param{{"lease", lease}}, nil)
	return err
}

// Acks acks many leased jobs in one request and one commit: one error per
// ack, in order (nil: acked), as httpapi.Client.Acks answers.
func (c *Client) Acks(ctx context.Context, acks []httpapi.AckItem) ([]error, error) {
	body, err := c.call(ctx, opAcks, "", nil, ackData(acks))
	if err != nil {
		return nil, err
	}
	d := decoder{b: body}
	errs := decodeAckAnswers(&d, len(acks))
	if d.end(); d.err != nil {
		return nil, fmt.Errorf("native acks: decode answer: %w", d.err)
	}
	return errs, nil
}

// ackData is the data of a list of acks (docs/protocol.md §4, acks).
func ackData(acks []httpapi.AckItem) []byte {
	data := binary.AppendUvarint(nil, uint64(len(acks)))
	for _, a := range acks {
		data = appendStr(data, a.ID)
		data = appendStr(data, a.Lease)
	}
	return data
}

// decodeAckAnswers decodes the answers to want acks: one error each, nil
// when acked; d holds the first error.
func decodeAckAnswers(d *decoder, want int) []error {
	n := d.count("acks", 1)
	if d.err == nil && n != want {
		d.err = fmt.Errorf("%d answers to %d acks", n, want)
	}
	if d.err != nil {
		return nil
	}
	errs := make([]error, n)
	for i := range errs {
		if d.byte1("acked") == 1 {
			continue
		}
		code, msg := d.str("code"), d.str("message")
		errs[i] = httpapi.ErrorForCode(code, msg, int(d.uvarint("retry_after_s")))
	}
	return errs
}

// Nack sends a leased job back for a retry after delay (0: now;
// engine.NackBackoff: the queue's backoff) and answers the state it went
// to.
func (c *Client) Nack(ctx context.Context, id, lease string, delay time.Duration, reason string) (string, error) {
	ps := []param{{"lease", lease}}
	if delay != engine.NackBackoff {
		ps = append(ps, param{"delay", delay.String()})
	}
	if reason != "" {
		ps = append(ps, param{"error", reason})
	}
	body, err := c.call(ctx, opNack, id, ps, nil)
	if err != nil {
		return "", err
	}
	d := decoder{b: body}
	st := d.str("state")
	if d.end(); d.err != nil {
		return "", fmt.Errorf("native nack: decode answer: %w", d.err)
	}
	return st, nil
}

// Fail sends a leased job straight to the dead-letter set.
func (c *Client) Fail(ctx context.Context, id, lease, reason string) error {
	ps := []param{{"lease", lease}}
	if reason != "" {
		ps = append(ps, param{"error", reason})
	}
	_, err := c.call(ctx, opFail, id, ps, nil)
	return err
}

// Extend renews a lease for ttr (0: the lease's own) and answers its new
// expiry.
func (c *Client) Extend(ctx context.Context, id, lease string, ttr time.Duration) (time.Time, error) {
	ps := []param{{"lease", lease}}
	if ttr != 0 {
		ps = append(ps, param{"ttr", ttr.String()})
	}
	body, err := c.call(ctx, opExtend, id, ps, nil)
	if err != nil {
		return time.Time{}, err
	}
	d := decoder{b: body}
	t := d.time("expires_at")
	if d.end(); d.err != nil {
		return time.Time{}, fmt.Errorf("native extend: decode answer: %w", d.err)
	}
	return t, nil
}
