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

var moveParams = []string{"to", "state", "limit", "rate", "dry_run"}

// MoveResult answers POST /v1/queues/{q}/move: how many jobs moved (or
// would move, in a dry run) and how many are left in the source state.
type MoveResult struct {
	Moved     int `json:"moved"`
	Remaining int `json:"remaining"`
}

// parseMoveQuery builds the request of POST /v1/queues/{q}/move; errors
// name the parameter.
func parseMoveQuery(from, raw string) (engine.MoveRequest, error) {
	var v [5]string
	r := engine.MoveRequest{From: from, State: job.StateReady}
	if err := parseQuery(raw, moveParams, v[:]); err != nil {
		return r, err
	}
	if v[0] == "" {
		return r, invalidArg("to", "required (the queue to move jobs to)")
	}
	if err := job.CheckQueueName(v[0]); err != nil {
		return r, invalidArg("to", "%v", err)
	}
	if v[0] == from {
		return r, invalidArg("to", "must differ from the source queue %q", from)
	}
	r.To = v[0]
	switch v[1] {
	case "", "ready":
	case "dead":
		r.State = job.StateDead
	default:
		return r, invalidArg("state", "want ready or dead, got %q", v[1])
	}
	var err error
	if r.Limit, err = parseInt("limit", v[2], 1, engine.MaxMove, defaultMoveLimit); err != nil {
		return r, err
	}
	if v[3] != "" {
		rate, err := strconv.ParseFloat(v[3], 64)
		if err != nil || math.IsNaN(rate) || rate < 0 || rate > 1e9 {
			return r, invalidArg("rate", "want jobs per second, a number from 0 (unpaced) to 1e9, got %q", v[3])
		}
		r.Rate = rate
	}
	switch v[4] {
	case "", "0", "false":
	case "1", "true":
		r.DryRun = true
	default:
		return r, invalidArg("dry_run", "want 1 or 0, got %q", v[4])
	}
	return r, nil
}

// move serves POST /v1/queues/{q}/move. A paced move may take a while; a
// client that goes away stops it, and what moved stays moved.
func (s *Server) move(w http.ResponseWriter, r *http.Request) {
	req, err := parseMoveQuery(r.PathValue("q"), r.URL.RawQuery)
	if err != nil {
		s.writeError(w, err)
		return
	}
	moved, remaining, err := s.eng.Move(r.Context(), req)
	if err != nil && moved == 0 {
		s.writeError(w, err)
		return
	}
	if err != nil {
		// Some jobs moved before the error: say so, the error is in the log.
		s.log.Warn("move stopped early", "from", req.From, "to", req.To, "moved", moved, "err", err)
	}
	s.writeJSON(w, http.StatusOK, MoveResult{Moved: moved, Remaining: remaining})
}
