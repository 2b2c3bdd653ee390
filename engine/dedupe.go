package engine

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// keyModeOf is the key mode of n in q: its own, else q's, else window.
func keyModeOf(n *job.New, q *queue) job.KeyMode {
	return cmp.Or(n.KeyMode, q.conf().KeyMode, job.KeyWindow)
}

// keyHolder reads the job that holds n's key in q, if any: id, the job
// (nil when it finished and was deleted) and its state (done then).
func keyHolder(b *batch, q *queue, key string) (held *job.Job, state job.State, dup bool, err error) {
	id, dup, err := b.txn.Dedupe(q.name, key)
	if err != nil || !dup {
		return nil, 0, false, wrapDedupe(err)
	}
	held, err = b.txn.Job(id, false)
	if errors.Is(err, job.ErrNotFound) {
		return &job.Job{ID: id, State: job.StateDone}, job.StateDone, true, nil
	}
	if err != nil {
		return nil, 0, false, err
	}
	return held, held.State, true, nil
}

func wrapDedupe(err error) error {
	if err != nil {
		return fmt.Errorf("dedupe: %w", err)
	}
	return nil
}

// keyTakes reports what n's key does in mode when its holder is in state:
// answer a duplicate, replace the holder's payload, or neither (a new job,
// which takes the key).
func keyTakes(m job.KeyMode, state job.State) (duplicate, replace bool) {
	waiting := state == job.StateReady || state == job.StateDelayed
	switch {
	case m == job.KeyWindow, m == job.KeyActive && (waiting || state == job.StateLeased):
		return true, false
	case m == job.KeyReplace && waiting:
		return false, true
	}
	return false, false
}

// dedupe answers n when its key makes it a duplicate or a replace (done),
// else lets enqueueOne create it.
func (e *Engine) dedupe(b *batch, q *queue, n *job.New, m job.KeyMode) (res job.Result, done bool, err error) {
	held, state, dup, err := keyHolder(b, q, n.Key)
	if err != nil || !dup {
		return job.Result{}, false, err
	}
	switch duplicate, replace := keyTakes(m, state); {
	case duplicate:
		return job.Result{ID: held.ID, Queue: q.name, State: state, Duplicate: true}, true, nil
	case replace:
		res, err := e.replaceOne(b, q, held, n)
		return res, true, err
	}
	return job.Result{}, false, nil
}

// keyTTL is how long j's dedupe key is kept: the dedupe window, from
// enqueue in window mode; in the other modes, which ask whether the job is
// still waiting, from when it becomes ready.
func (e *Engine) keyTTL(mode job.KeyMode, j *job.Job, now time.Time) time.Duration {
	if mode == job.KeyWindow {
		return e.cfg.DedupeWindow
	}
	return e.cfg.DedupeWindow + max(0, j.RunAt.Sub(now))
}

// replaceOne gives the waiting job held (read without its payload) the
// payload, content type, headers and on_success of n, keeping its id and its place
// (ReadySeq, RunAt), and renews its key.
func (e *Engine) replaceOne(b *batch, q *queue, held *job.Job, n *job.New) (job.Result, error) {
	next := held.Clone()
	next.Payload, next.Size = n.Payload, len(n.Payload)
	next.ContentType, next.Headers, next.OnSuccess = n.ContentType, n.Headers, n.OnSuccess
	if err := b.txn.Delete(held); err != nil {
		return job.Result{}, fmt.Errorf("replace: %w", err)
	}
	if err := b.txn.Create(next); err != nil {
		return job.Result{}, fmt.Errorf("replace: %w", err)
	}
	if err := b.txn.PutDedupe(q.name, n.Key, next.ID, e.keyTTL(job.KeyReplace, next, b.now)); err != nil {
		return job.Result{}, fmt.Errorf("put dedupe key: %w", err)
	}
	if next.State == job.StateReady {
		e.hotReplace(q, next)
	}
	q.bytes.Add(int64(next.Size - held.Size))
	return job.Result{ID: next.ID, Queue: q.name, State: next.State, Replaced: true}, nil
}
