package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// AckLease acks the jobs a worker finished and leases its next ones in one
// request (POST /v1/queues/{q}/lease with the acks as its body): one
// commit and one fsync on the daemon for both. It answers the jobs as
// Lease does and one error per ack, in order, as Acks does; a refused ack
// never holds the lease back. Its own error is the whole request's, and
// then the acks may or may not have been made: an ack repeated with the
// same lease answers nil. Without acks it is Lease.
func (c *Client) AckLease(ctx context.Context, queue string, max int, wait, ttr time.Duration, acks []AckItem) ([]Job, []error, error) {
	if len(acks) == 0 {
		jobs, err := c.Lease(ctx, queue, max, wait, ttr)
		return jobs, nil, err
	}
	p, err := queuePath(queue, "/lease")
	if err != nil {
		return nil, nil, err
	}
	body, err := json.Marshal(AcksRequest{Acks: acks})
	if err != nil {
		return nil, nil, err
	}
	var res LeaseResult
	hdr := func(h http.Header) { h.Set("Content-Type", "application/json") }
	if err := c.do(ctx, http.MethodPost, p, leaseQuery(max, wait, ttr), bytes.NewReader(body), hdr, &res); err != nil {
		return nil, nil, err
	}
	if len(res.Acks) != len(acks) {
		return nil, nil, fmt.Errorf("POST %s: %d answers to %d acks", p, len(res.Acks), len(acks))
	}
	return res.Jobs, ackErrors(res.Acks), nil
}

// ackErrors is the error of each answered ack: nil when acked, else the
// *APIError a single ack of that job would have answered.
func ackErrors(res []AckResult) []error {
	errs := make([]error, len(res))
	for i, a := range res {
		if a.Acked {
			continue
		}
		e := &APIError{Status: statusForCode(a.Error), Code: "internal", Message: "ack not acked and no error"}
		if a.Error != nil {
			e.Code, e.Message = a.Error.Code, a.Error.Message
			e.RetryAfter = time.Duration(a.Error.RetryAfterS) * time.Second
		}
		errs[i] = e
	}
	return errs
}
