package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Queues answers the stats of every queue.
func (c *Client) Queues(ctx context.Context) ([]QueueStats, error) {
	var res QueueList
	err := c.do(ctx, http.MethodGet, "/v1/queues", nil, nil, nil, &res)
	return res.Queues, err
}

// Queue answers one queue's stats.
func (c *Client) Queue(ctx context.Context, name string) (QueueStats, error) {
	var res QueueStats
	p, err := queuePath(name, "")
	if err == nil {
		err = c.do(ctx, http.MethodGet, p, nil, nil, nil, &res)
	}
	return res, err
}

// Stats answers GET /v1/stats, the document `edgeq stats --json` prints.
func (c *Client) Stats(ctx context.Context) (StatsDoc, error) {
	var res StatsDoc
	err := c.do(ctx, http.MethodGet, "/v1/stats", nil, nil, nil, &res)
	return res, err
}

// Pause stops dispatch of a queue; ingest continues.
func (c *Client) Pause(ctx context.Context, queue string) error {
	return c.queueCall(ctx, http.MethodPost, queue, "/pause", nil, nil)
}

// Resume restarts dispatch of a queue.
func (c *Client) Resume(ctx context.Context, queue string) error {
	return c.queueCall(ctx, http.MethodPost, queue, "/resume", nil, nil)
}

// Purge deletes a queue's ready and delayed jobs and answers how many.
func (c *Client) Purge(ctx context.Context, queue string) (int, error) {
	var res DeletedResult
	err := c.queueCall(ctx, http.MethodDelete, queue, "/jobs", nil, &res)
	return res.Deleted, err
}

// DeadList lists up to limit (0: 100) dead jobs after the ID after ("" from
// the oldest). next is the after of the next page, "" when there is none.
func (c *Client) DeadList(ctx context.Context, queue, after string, limit int) (jobs []Job, next string, err error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var res JobList
	err = c.queueCall(ctx, http.MethodGet, queue, "/dead", q, &res)
	return res.Jobs, res.Next, err
}

// DeadRetry moves up to limit (0: 100) dead jobs back to ready, attempts
// reset, and answers how many moved.
func (c *Client) DeadRetry(ctx context.Context, queue string, limit int) (int, error) {
	q := url.Values{}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var res MovedResult
	err := c.queueCall(ctx, http.MethodPost, queue, "/dead/retry", q, &res)
	return res.Moved, err
}

// DeadPurge deletes a queue's dead jobs and answers how many.
func (c *Client) DeadPurge(ctx context.Context, queue string) (int, error) {
	var res DeletedResult
	err := c.queueCall(ctx, http.MethodDelete, queue, "/dead", nil, &res)
	return res.Deleted, err
}

// MoveOptions are the options of Client.Move; zero values are the server's
// defaults.
type MoveOptions struct {
	State  string  // "ready" (default) or "dead"
	Limit  int     // jobs to move in this call; 0: the server's default (1000)
	Rate   float64 // jobs per second; 0: unpaced
	DryRun bool    // count only
}

// Move moves up to o.Limit jobs of queue from to queue to (POST
// /v1/queues/{q}/move) and answers how many moved and how many are left
// in the source state. A paced move lasts about Limit/Rate seconds: give
// ctx room for it.
func (c *Client) Move(ctx context.Context, from, to string, o MoveOptions) (MoveResult, error) {
	q := url.Values{"to": {to}}
	if o.State != "" {
		q.Set("state", o.State)
	}
	if o.Limit != 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Rate != 0 {
		q.Set("rate", strconv.FormatFloat(o.Rate, 'g', -1, 64))
	}
	if o.DryRun {
		q.Set("dry_run", "1")
	}
	var res MoveResult
	err := c.queueCall(ctx, http.MethodPost, from, "/move", q, &res)
	return res, err
}

// Governor answers the governor block of GET /v1/stats; nil when the
// daemon runs no governor.
func (c *Client) Governor(ctx context.Context) (*GovernorStats, error) {
	st, err := c.Stats(ctx)
	return st.Governor, err
}

// Drill forces the governor to level ("normal", "elevated", "high",
// "critical") for d and answers the governor's state. A daemon without a
// governor answers 503 unavailable.
func (c *Client) Drill(ctx context.Context, level string, d time.Duration) (GovernorStats, error) {
	var res GovernorStats
	body, err := json.Marshal(DrillRequest{Level: level, Duration: d.String()})
	if err != nil {
		return res, err
	}
	hdr := func(h http.Header) { h.Set("Content-Type", "application/json") }
	err = c.do(ctx, http.MethodPost, "/v1/governor/drill", nil, bytes.NewReader(body), hdr, &res)
	return res, err
}

// ClearDrill ends a drill and answers the governor's state.
func (c *Client) ClearDrill(ctx context.Context) (GovernorStats, error) {
	var res GovernorStats
	err := c.do(ctx, http.MethodDelete, "/v1/governor/drill", nil, nil, nil, &res)
	return res, err
}
