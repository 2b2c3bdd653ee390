package uplink

import (
	"context"
	"time"
)

// The batcher's side of the calls: gathering the next batch.

// receive takes the next call's jobs, a critical or high one's when one
// waits, else whichever comes first; nil once done or timeout (nil: never)
// fires.
func (u *Uplink) receive(done <-chan struct{}, timeout <-chan time.Time) []*item {
	if g := u.waiting(false); g != nil {
		return g
	}
	select {
	case g := <-u.high:
		return g
	case g := <-u.low:
		return g
	case <-timeout:
		return nil
	case <-done:
		return nil
	}
}

// waiting takes the jobs of a call that waits now, a critical or high
// one's first, or of those alone when highOnly; nil if none waits.
func (u *Uplink) waiting(highOnly bool) []*item {
	select {
	case g := <-u.high:
		return g
	default:
	}
	if highOnly {
		return nil
	}
	select {
	case g := <-u.low:
		return g
	default:
		return nil
	}
}

// collect gathers the next batch from carry and the calls that arrive: it
// takes more until the batch is full, or lingered long enough after its
// first job; critical and high jobs go first and do not linger. Under a
// pacer (max_rate, max_bandwidth) a batch holds jobs of one kind only, so
// that a critical or high job never waits for a backlog batch's tokens.
// What did not fit is answered as next. ok is false once ctx ended.
func (u *Uplink) collect(ctx context.Context, carry []*item) (batch, next []*item, ok bool) {
	pending := carry
	if g := u.waiting(true); g != nil {
		pending = append(g, pending...)
	}
	if len(pending) == 0 {
		if pending = u.receive(ctx.Done(), nil); pending == nil {
			return nil, nil, false
		}
	}
	paced := u.jobs != nil || u.bytes != nil
	size := 0
	var linger <-chan time.Time
	for {
		for len(pending) > 0 {
			it := pending[0]
			if paced && len(batch) > 0 && it.high && !batch[0].high {
				// Critical or high jobs arrived: they go first.
				pending = append(pending, batch...)
				batch, size = nil, 0
				continue
			}
			if len(batch) > 0 && (len(batch) >= u.cfg.Batch.MaxJobs || size+len(it.j.Payload) > u.cfg.Batch.MaxBytes ||
				(paced && it.high != batch[0].high)) {
				return batch, pending, true
			}
			batch = append(batch, it)
			size += len(it.j.Payload)
			pending = pending[1:]
		}
		if len(batch) >= u.cfg.Batch.MaxJobs || size >= u.cfg.Batch.MaxBytes {
			return batch, nil, true
		}
		if batch[0].high {
			// No lingering for critical and high jobs: what waits now
			// joins them.
			if pending = u.waiting(false); pending == nil {
				return batch, nil, true
			}
			continue
		}
		if linger == nil {
			t := time.NewTimer(u.cfg.Batch.Linger)
			defer t.Stop()
			linger = t.C
		}
		if pending = u.receive(ctx.Done(), linger); pending == nil {
			if ctx.Err() != nil {
				answer(batch, errDown)
				return nil, nil, false
			}
			return batch, nil, true // lingered long enough
		}
	}
}
