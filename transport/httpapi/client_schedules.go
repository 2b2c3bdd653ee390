package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/edgeq/edgeq/engine/schedule"
)

// Schedules answers every schedule (GET /v1/schedules).
func (c *Client) Schedules(ctx context.Context) ([]ScheduleDoc, error) {
	var res ScheduleList
	err := c.do(ctx, http.MethodGet, "/v1/schedules", nil, nil, nil, &res)
	return res.Schedules, err
}

// PutSchedule creates or replaces the API schedule name and answers it.
func (c *Client) PutSchedule(ctx context.Context, name string, spec schedule.Spec) (ScheduleDoc, error) {
	var res ScheduleDoc
	body, err := json.Marshal(spec)
	if err != nil {
		return res, err
	}
	hdr := func(h http.Header) { h.Set("Content-Type", "application/json") }
	err = c.do(ctx, http.MethodPut, "/v1/schedules/"+url.PathEscape(name), nil, bytes.NewReader(body), hdr, &res)
	return res, err
}

// DeleteSchedule deletes the API schedule name.
func (c *Client) DeleteSchedule(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/schedules/"+url.PathEscape(name), nil, nil, nil, nil)
}
