package httpapi

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// lastMoves holds each fake's last MoveRequest (by *fakeEngine), kept
// beside the fake rather than in it so that fake_test.go stays as it is.
var lastMoves sync.Map

func (f *fakeEngine) lastMove() engine.MoveRequest {
	r, _ := lastMoves.Load(f)
	m, _ := r.(engine.MoveRequest)
	return m
}

// Move moves jobs of the fake in ID order and records the last request.
func (f *fakeEngine) Move(ctx context.Context, r engine.MoveRequest) (moved, remaining int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errLocked("Move"); err != nil {
		return 0, 0, err
	}
	lastMoves.Store(f, r)
	for _, id := range f.sortedIDsLocked() {
		j := f.jobs[id]
		if j.Queue != r.From || j.State != r.State {
			continue
		}
		if moved == r.Limit {
			remaining++
			continue
		}
		moved++
		if !r.DryRun {
			j.Queue, j.State = r.To, job.StateReady
		} else {
			remaining++
		}
	}
	return moved, remaining, nil
}

func TestMove(t *testing.T) {
	ts := mustStartServer(t, Config{})
	for range 3 {
		ts.eng.put(job.Job{Queue: "slow", State: job.StateReady})
	}
	ts.eng.put(job.Job{Queue: "slow", State: job.StateDead})

	r := ts.do(t, "POST", "/v1/queues/slow/move?to=fast&limit=2&rate=50", nil)
	r.wantStatus(t, 200)
	var got MoveResult
	r.decode(t, &got)
	if got != (MoveResult{Moved: 2, Remaining: 1}) {
		t.Errorf("move = %+v, want 2 moved, 1 remaining", got)
	}
	last := ts.eng.lastMove()
	want := engine.MoveRequest{From: "slow", To: "fast", State: job.StateReady, Limit: 2, Rate: 50}
	if last != want {
		t.Errorf("engine got %+v, want %+v", last, want)
	}

	r = ts.do(t, "POST", "/v1/queues/slow/move?to=fast&state=dead&dry_run=1", nil)
	r.wantStatus(t, 200)
	r.decode(t, &got)
	last = ts.eng.lastMove()
	if got != (MoveResult{Moved: 1, Remaining: 1}) || !last.DryRun || last.State != job.StateDead || last.Limit != defaultMoveLimit {
		t.Errorf("dry run = %+v, engine got %+v", got, last)
	}

	for _, tc := range []struct{ query, field string }{
		{"", "to:"},
		{"to=slow", "to:"},
		{"to=Bad!", "to:"},
		{"to=fast&state=leased", "state:"},
		{"to=fast&limit=0", "limit:"},
		{"to=fast&limit=100001", "limit:"},
		{"to=fast&rate=-1", "rate:"},
		{"to=fast&rate=NaN", "rate:"},
		{"to=fast&dry_run=maybe", "dry_run:"},
		{"to=fast&speed=2", "speed:"},
	} {
		ts.do(t, "POST", "/v1/queues/slow/move?"+tc.query, nil).wantError(t, 400, "invalid_argument", tc.field, 0)
	}

	ts.eng.setErr("Move", job.ErrShed)
	ts.do(t, "POST", "/v1/queues/slow/move?to=fast", nil).wantError(t, 429, "shed", "", 1)
}

func TestClientMoveAndDrill(t *testing.T) {
	ts := mustStartServer(t, Config{})
	ts.eng.put(job.Job{Queue: "a", State: job.StateDead})
	c := NewClient(ts.base, "", nil)
	defer c.CloseIdleConnections()
	res, err := c.Move(t.Context(), "a", "b", MoveOptions{State: "dead", Limit: 5, Rate: 2.5})
	if err != nil || res.Moved != 1 || res.Remaining != 0 {
		t.Errorf("Move = %+v, %v", res, err)
	}
	last := ts.eng.lastMove()
	if last.Rate != 2.5 || last.Limit != 5 || last.State != job.StateDead {
		t.Errorf("engine got %+v", last)
	}
	// No governor is wired: drills answer 503 unavailable.
	_, err = c.Drill(t.Context(), "high", 0)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "unavailable" || !ae.Temporary() {
		t.Errorf("Drill without a governor = %v", err)
	}
	if _, err := c.ClearDrill(t.Context()); err == nil || !strings.Contains(err.Error(), "unavailable") {
		t.Errorf("ClearDrill without a governor = %v", err)
	}
}
