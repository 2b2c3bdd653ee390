package httpapi

import (
	"math"
	"net/http"
	"strconv"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// Limits of /move: a call moves at most engine.MaxMove jobs; the client
// calls again to go on.
const defaultMoveLimit = 1000

// MoveResult answers POST /v1/queues/{q}/move: how many jobs moved (or
// would move, in a dry run) and how many are left in the source state.
type MoveResult struct {
	Moved     int `json:"moved"`
	Remaining int `json:"remaining"`
}

// parseMoveQuery builds the request of POST /v1/queues/{q}/move; errors
// name the parameter.
func parseMoveQuery(from, raw string) (engine.MoveRequest, error) {
	var to, state, limit, rate, dryRun string
	r := engine.MoveRequest{From: from, State: job.StateReady}
	err := parseQuery(raw, param{"to", &to}, param{"state", &state}, param{"limit", &limit}, param{"rate", &rate}, param{"dry_run", &dryRun})
	if err != nil {
		return r, err
	}
	if to == "" {
		return r, invalidArg("to", "required (the queue to move jobs to)")
	}
	if err := job.CheckQueueName(to); err != nil {
		return r, invalidArg("to", "%v", err)
	}
	if to == from {
		return r, invalidArg("to", "must differ from the source queue %q", from)
	}
	r.To = to
	switch state {
	case "", "ready":
	case "dead":
		r.State = job.StateDead
	default:
		return r, invalidArg("state", "want ready or dead, got %q", state)
	}
	if r.Limit, err = parseInt("limit", limit, 1, engine.MaxMove, defaultMoveLimit); err != nil {
		return r, err
	}
	if rate != "" {
		f, err := strconv.ParseFloat(rate, 64)
		if err != nil || math.IsNaN(f) || f < 0 || f > 1e9 {
			return r, invalidArg("rate", "want jobs per second, a number from 0 (unpaced) to 1e9, got %q", rate)
		}
		r.Rate = f
	}
	switch dryRun {
	case "", "0", "false":
	case "1", "true":
		r.DryRun = true
	default:
		return r, invalidArg("dry_run", "want 1 or 0, got %q", dryRun)
	}
	return r, nil
}

// move serves POST /v1/queues/{q}/move. A paced move may take a while; a
// client that goes away stops it, and what moved stays moved.
func (s *Server) move(w http.ResponseWriter, r *http.Request) (any, error) {
	req, err := parseMoveQuery(r.PathValue("q"), r.URL.RawQuery)
	if err != nil {
		return nil, err
	}
	moved, remaining, err := s.eng.Move(r.Context(), req)
	if err != nil && moved == 0 {
		return nil, err
	}
	if err != nil {
		// Some jobs moved before the error: say so, the error is in the log.
		s.log.Warn("move stopped early", "from", req.From, "to", req.To, "moved", moved, "err", err)
	}
	return MoveResult{Moved: moved, Remaining: remaining}, nil
}
