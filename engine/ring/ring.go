package ring

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"
)

// ErrFull is returned by Push when the ring stayed full for the whole allowed wait.
var ErrFull = errors.New("ring full")

// maxSize is the largest capacity New accepts.
const maxSize = 1 << 30

// cacheLinePad separates fields written by different goroutines. 128 bytes
// covers 64-byte lines fetched in adjacent pairs (x86) and 128-byte lines
// (some arm64); any two fields at least this far apart never share a line.
type cacheLinePad [128]byte

// Backoff schedule of Push once the ring is full; see Push.
const (
	spinTries   = 16
	yieldTries  = 16
	minSleep    = 16 * time.Microsecond
	maxSleep    = time.Millisecond
	sleepGrowth = 2
)

// slot is one cell of the ring. seq says whose turn it is (see doc.go):
// 2p means free for the producer of position p, 2p+1 means it holds the item
// of position p. val is plain memory, handed over by the seq stores.
type slot[T any] struct {
	seq atomic.Uint64
	val T
}

// Ring is a bounded lock-free multi-producer multi-consumer FIFO queue.
// Create it with New; the zero value is not usable, and a Ring must not be
// copied after first use.
//
// All methods are safe for concurrent use by any number of goroutines.
type Ring[T any] struct {
	_ cacheLinePad

	// Read-only after New.
	slots []slot[T]
	mask  uint64

	_ cacheLinePad

	// tail is the next position to write; advanced by producers only.
	tail atomic.Uint64

	_ cacheLinePad

	// head is the next position to read; advanced by consumers only.
	head atomic.Uint64

	_ cacheLinePad
}

// New returns a ring holding up to size items; size is rounded up to a power
// of two; size < 1 or > 1<<30 is an error.
func New[T any](size int) (*Ring[T], error) {
	if size < 1 || size > maxSize {
		return nil, fmt.Errorf("ring size %d: out of range [1, %d]", size, maxSize)
	}
	n := 1
	for n < size {
		n <<= 1
	}
	// make would panic rather than fail on a slice whose byte size overflows
	// int, which can happen on 32-bit platforms.
	if elem := unsafe.Sizeof(slot[T]{}); elem > 0 && uint64(n) > uint64(math.MaxInt)/uint64(elem) {
		return nil, fmt.Errorf("ring size %d: %d slots of %d bytes exceed the address space", size, n, elem)
	}
	r := &Ring[T]{
		slots: make([]slot[T], n),
		mask:  uint64(n - 1),
	}
	for i := range r.slots {
		r.slots[i].seq.Store(2 * uint64(i))
	}
	return r, nil
}

// TryPush appends v and reports true, or reports false at once when the ring
// is full. It never blocks. Full includes the moment when a consumer has
// claimed the oldest item but not finished copying it out.
//
// TryPush is safe for concurrent use.
func (r *Ring[T]) TryPush(v T) bool {
	pos := r.tail.Load()
	for {
		s := &r.slots[pos&r.mask]
		seq := s.seq.Load()
		switch dif := int64(seq - 2*pos); {
		case dif == 0:
			if r.tail.CompareAndSwap(pos, pos+1) {
				s.val = v
				s.seq.Store(2*pos + 1)
				return true
			}
			pos = r.tail.Load()
		case dif < 0:
			// The slot still holds the item of pos-cap.
			return false
		default:
			// Another producer claimed pos after we read tail.
			pos = r.tail.Load()
		}
	}
}

// TryPop removes and returns the oldest item and true, or the zero value and
// false at once when no item is ready. It never blocks. Not ready includes an
// item whose producer has claimed its slot but not finished writing it, so
// false means "nothing now", not "nothing coming".
//
// TryPop is safe for concurrent use.
func (r *Ring[T]) TryPop() (T, bool) {
	pos := r.head.Load()
	for {
		s := &r.slots[pos&r.mask]
		seq := s.seq.Load()
		switch dif := int64(seq - (2*pos + 1)); {
		case dif == 0:
			if r.head.CompareAndSwap(pos, pos+1) {
				v := s.val
				var zero T
				s.val = zero
				s.seq.Store(2 * (pos + r.mask + 1))
				return v, true
			}
			pos = r.head.Load()
		case dif < 0:
			// The producer of pos has not published yet.
			var zero T
			return zero, false
		default:
			// Another consumer claimed pos after we read head.
			pos = r.head.Load()
		}
	}
}

// PopBatch pops up to len(dst) items into dst, oldest first, and returns how
// many it popped. It never blocks. It claims the whole run of ready items
// with one atomic operation, so draining in batches is much cheaper than
// calling TryPop in a loop. Like TryPop it stops at the first item that is
// not fully written yet.
//
// PopBatch is safe for concurrent use; items popped by one call are
// consecutive in the ring.
func (r *Ring[T]) PopBatch(dst []T) int {
	limit := uint64(len(dst))
	if c := r.mask + 1; limit > c {
		limit = c
	}
	if limit == 0 {
		return 0
	}
	pos := r.head.Load()
	for {
		seq := r.slots[pos&r.mask].seq.Load()
		switch dif := int64(seq - (2*pos + 1)); {
		case dif < 0:
			return 0
		case dif > 0:
			pos = r.head.Load()
			continue
		}
		// pos is ready; extend the run while the following positions are
		// published too. The check is exact per lap, so a run can never
		// reach past tail or wrap onto an unreleased slot.
		n := uint64(1)
		for n < limit && r.slots[(pos+n)&r.mask].seq.Load() == 2*(pos+n)+1 {
			n++
		}
		if !r.head.CompareAndSwap(pos, pos+n) {
			pos = r.head.Load()
			continue
		}
		// head was pos until the swap, so no other consumer claimed any of
		// pos..pos+n-1, and published slots stay published until claimed.
		var zero T
		next := 2 * (pos + r.mask + 1)
		for i := range n {
			s := &r.slots[(pos+i)&r.mask]
			dst[i] = s.val
			s.val = zero
			s.seq.Store(next + 2*i)
		}
		return int(n)
	}
}

// Push appends v, waiting at most maxWait for room: it spins briefly, then
// yields with runtime.Gosched, then sleeps for intervals growing up to about
// a millisecond. It returns nil once v is in the ring, ErrFull when the wait
// ran out with the ring still full, or ctx.Err() when ctx is done first. A
// context that is already done when Push is called is refused even if there
// is room, so a caller that has given up never enqueues. maxWait <= 0 means
// a single attempt.
//
// Push is the intake's backpressure point: bounded wait, then explicit
// refusal. It is safe for concurrent use.
func (r *Ring[T]) Push(ctx context.Context, v T, maxWait time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.TryPush(v) {
		return nil
	}
	if maxWait <= 0 {
		return ErrFull
	}
	start := time.Now()
	done := ctx.Done()

	for range spinTries {
		if r.TryPush(v) {
			return nil
		}
	}
	for range yieldTries {
		if time.Since(start) >= maxWait {
			return ErrFull
		}
		select {
		case <-done:
			return ctx.Err()
		default:
		}
		runtime.Gosched()
		if r.TryPush(v) {
			return nil
		}
	}

	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	sleep := minSleep
	for {
		left := maxWait - time.Since(start)
		if left <= 0 {
			return ErrFull
		}
		d := min(sleep, left)
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-done:
			return ctx.Err()
		case <-timer.C:
		}
		if r.TryPush(v) {
			return nil
		}
		sleep = min(sleep*sleepGrowth, maxSleep)
	}
}

// Len returns the number of items in the ring, counting those being written
// or read at this moment. Under concurrent use it is a snapshot that may be
// stale by the time it returns; it is always in [0, Cap()].
//
// Len is safe for concurrent use.
func (r *Ring[T]) Len() int {
	// Load head first: tail only grows and never falls behind head, so a
	// later tail is at least this head and the difference cannot underflow.
	h := r.head.Load()
	t := r.tail.Load()
	return int(min(t-h, r.mask+1))
}

// Pushed returns the number of items ever pushed (or being pushed): a
// counter that only grows, for callers that count arrivals between two
// moments.
//
// Pushed is safe for concurrent use.
func (r *Ring[T]) Pushed() uint64 {
	return r.tail.Load()
}

// Popped returns the number of items ever popped (or being popped): with
// one consumer, how many it has taken. It never exceeds Pushed.
//
// Popped is safe for concurrent use.
func (r *Ring[T]) Popped() uint64 {
	return r.head.Load()
}

// Cap returns the number of items the ring holds when full.
//
// Cap is safe for concurrent use.
func (r *Ring[T]) Cap() int {
	return int(r.mask + 1)
}
