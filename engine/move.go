package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// MoveRequest asks to move a backlog from one queue to another (SPEC 5
// "move"): e.g. promote a slow queue's ready jobs to a faster one, or send
// dead jobs to a repair queue.
type MoveRequest struct {
	From, To string
	State    job.State // StateReady (FIFO order) or StateDead (oldest first)
	Limit    int       // jobs to move in this call, 1..MaxMove
	Rate     float64   // jobs per second, 0: as fast as the store takes them
	DryRun   bool      // count only
}

// MaxMove bounds one Move call; call again to continue.
const MaxMove = 100000

// moveStep is the most jobs one commit moves.
const moveStep = 500

// Move moves up to r.Limit jobs, pacing them at r.Rate, and answers how many
// it moved and how many are left in the source state. Every step is its own
// commit, so a move that is cancelled or interrupted keeps what it moved and
// the next call resumes with the rest. Dead jobs get their attempts reset;
// ready jobs keep theirs and join the back of the target queue.
func (e *Engine) Move(ctx context.Context, r MoveRequest) (moved, remaining int, err error) {
	from, err := e.existingQueue(r.From)
	if err != nil {
		return 0, 0, err
	}
	to, err := e.target(r.To)
	if err != nil {
		return 0, 0, err
	}
	switch {
	case r.From == r.To:
		return 0, 0, fmt.Errorf("%w: to: must differ from the source queue", job.ErrInvalidArgument)
	case r.State != job.StateReady && r.State != job.StateDead:
		return 0, 0, fmt.Errorf("%w: state: want ready or dead", job.ErrInvalidArgument)
	case r.Limit < 1 || r.Limit > MaxMove:
		return 0, 0, fmt.Errorf("%w: limit: %d is outside 1..%d", job.ErrInvalidArgument, r.Limit, MaxMove)
	case r.Rate < 0:
		return 0, 0, fmt.Errorf("%w: rate: must not be negative", job.ErrInvalidArgument)
	}
	left := func() int {
		if r.State == job.StateDead {
			return int(from.dead.Load())
		}
		return int(from.ready.Load())
	}
	if r.DryRun {
		return min(r.Limit, left()), left(), nil
	}
	if err := e.admit(to, 0, 0, time.Now()); err != nil {
		return 0, left(), err // the target is shed
	}
	step := moveStep
	if r.Rate > 0 {
		step = max(1, min(moveStep, int(r.Rate/10))) // ~10 steps a second
	}
	start := time.Now()
	for moved < r.Limit {
		n := min(step, r.Limit-moved)
		o := &op{kind: opMove, q: from, to: to, from: r.State, max: n}
		if err := e.submit(ctx, o); err != nil {
			return moved, left(), err
		}
		moved += o.n
		if o.n < n {
			break // the source ran dry
		}
		if r.Rate > 0 {
			due := start.Add(time.Duration(float64(moved) / r.Rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return moved, left(), nil
				case <-e.stopCh:
					t.Stop()
					return moved, left(), job.ErrShuttingDown
				}
			}
		}
	}
	return moved, left(), nil
}

// applyMove moves up to o.max jobs of o.q in state o.from to o.to.
func (e *Engine) applyMove(b *batch, o *op) error {
	q := o.q
	var ids []job.ID
	if o.from == job.StateDead {
		var err error
		if ids, err = b.txn.Dead(q.name, 0, o.max); err != nil {
			return err
		}
	} else {
		refs, err := b.txn.Ready(q.name, q.cursor.Load(), o.max)
		if err != nil {
			return err
		}
		for _, r := range refs {
			q.cursor.Store(r.Seq)
			ids = append(ids, r.ID)
		}
		if len(ids) < o.max && q.groups.ready.Load() > 0 {
			grouped, err := groupedReady(b, q, o.max-len(ids))
			if err != nil {
				return err
			}
			ids = append(ids, grouped...)
		}
	}
	if len(ids) > 0 {
		to, err := e.adopt(o.to)
		if err != nil {
			o.err = err
			return nil
		}
		o.to = to
	}
	for _, id := range ids {
		j, err := b.txn.Job(id, false)
		if err != nil {
			return fmt.Errorf("move: %w", err)
		}
		if j.State != o.from || j.Queue != q.name {
			continue
		}
		next := e.toReady(b, o.to, j, b.now)
		next.Queue = o.to.name
		if o.from == job.StateDead {
			next.Attempt = 0
		}
		if err := e.stepFits(b, next); err != nil {
			return err
		}
		if err := b.txn.Update(j, next); err != nil {
			return fmt.Errorf("move: %w", err)
		}
		e.left(b, q, j)
		e.entered(b, o.to, next)
		o.to.enqueued.Add(1)
		o.to.in.add(b.now, 1)
		b.wrote(q)
		b.wrote(o.to)
		o.n++
	}
	return nil
}
