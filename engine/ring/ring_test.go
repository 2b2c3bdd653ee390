package ring

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func mustNew[T any](t testing.TB, size int) *Ring[T] {
	t.Helper()
	r, err := New[T](size)
	if err != nil {
		t.Fatalf("New(%d): %v", size, err)
	}
	return r
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		wantCap int
		wantErr bool
	}{
		{name: "one", size: 1, wantCap: 1},
		{name: "two", size: 2, wantCap: 2},
		{name: "three rounds up", size: 3, wantCap: 4},
		{name: "five rounds up", size: 5, wantCap: 8},
		{name: "power of two kept", size: 1024, wantCap: 1024},
		{name: "one past power of two", size: 1025, wantCap: 2048},
		{name: "zero", size: 0, wantErr: true},
		{name: "negative", size: -1, wantErr: true},
		{name: "just over max", size: 1<<30 + 1, wantErr: true},
		{name: "max int", size: math.MaxInt, wantErr: true},
		{name: "min int", size: math.MinInt, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New[int](tt.size)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("New(%d) = cap %d, nil error; want error", tt.size, r.Cap())
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%d): %v", tt.size, err)
			}
			if got := r.Cap(); got != tt.wantCap {
				t.Errorf("Cap() = %d, want %d", got, tt.wantCap)
			}
			if got := r.Len(); got != 0 {
				t.Errorf("Len() = %d, want 0", got)
			}
		})
	}
}

// TestFIFOFullEmpty fills each ring to capacity, checks that it refuses one
// more, drains it in order and checks that it then reports empty.
func TestFIFOFullEmpty(t *testing.T) {
	for _, size := range []int{1, 2, 3, 8, 100} {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			r := mustNew[int](t, size)
			c := r.Cap()
			if v, ok := r.TryPop(); ok {
				t.Fatalf("TryPop on new ring = %d, true; want false", v)
			}
			for i := range c {
				if !r.TryPush(i) {
					t.Fatalf("TryPush(%d) = false with Len %d of %d", i, r.Len(), c)
				}
				if got, want := r.Len(), i+1; got != want {
					t.Fatalf("Len() = %d, want %d", got, want)
				}
			}
			if r.TryPush(-1) {
				t.Fatalf("TryPush on full ring of %d = true, want false", c)
			}
			if got := r.Len(); got != c {
				t.Fatalf("Len() of full ring = %d, want %d", got, c)
			}
			for i := range c {
				got, ok := r.TryPop()
				if !ok || got != i {
					t.Fatalf("TryPop() = %d, %t; want %d, true", got, ok, i)
				}
			}
			if v, ok := r.TryPop(); ok {
				t.Fatalf("TryPop on drained ring = %d, true; want false", v)
			}
			if got := r.Len(); got != 0 {
				t.Fatalf("Len() of drained ring = %d, want 0", got)
			}
		})
	}
}

// TestWrapAround laps small rings many times with varying fill levels, so
// every slot goes through many sequence numbers.
func TestWrapAround(t *testing.T) {
	tests := []struct {
		name  string
		size  int
		burst int
	}{
		{name: "size 1 burst 1", size: 1, burst: 1},
		{name: "size 2 burst 1", size: 2, burst: 1},
		{name: "size 4 burst 3", size: 4, burst: 3},
		{name: "size 8 burst 8", size: 8, burst: 8},
		{name: "size 16 burst 5", size: 16, burst: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustNew[int](t, tt.size)
			next, want := 0, 0
			for round := range 1000 {
				for range tt.burst {
					if !r.TryPush(next) {
						t.Fatalf("round %d: TryPush(%d) = false with Len %d", round, next, r.Len())
					}
					next++
				}
				// When there is room, leave one item behind every other
				// round to shift the boundary between laps, then catch up.
				pops := tt.burst
				if tt.burst > 1 && tt.burst < r.Cap() {
					if round%2 == 0 {
						pops--
					} else {
						pops++
					}
				}
				for range pops {
					got, ok := r.TryPop()
					if !ok || got != want {
						t.Fatalf("round %d: TryPop() = %d, %t; want %d, true", round, got, ok, want)
					}
					want++
				}
			}
			if got := r.Len(); got != 0 {
				t.Errorf("Len() after balanced rounds = %d, want 0", got)
			}
			if got, want := r.tail.Load(), uint64(1000*tt.burst); got != want {
				t.Errorf("tail = %d, want %d", got, want)
			}
			// The counters keep counting across laps of the slots.
			if got := r.Pushed(); got != uint64(next) {
				t.Errorf("Pushed() = %d, want %d", got, next)
			}
			if got := r.Popped(); got != uint64(want) {
				t.Errorf("Popped() = %d, want %d", got, want)
			}
		})
	}
}

func TestPopBatch(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		skip    int // items pushed and popped first, to start mid-lap
		pushed  int
		dstLen  int
		want    []int
		wantLen int // Len() afterwards
	}{
		{name: "empty", size: 8, pushed: 0, dstLen: 4, want: []int{}},
		{name: "zero dst", size: 8, pushed: 3, dstLen: 0, want: []int{}, wantLen: 3},
		{name: "partial", size: 8, pushed: 3, dstLen: 5, want: []int{0, 1, 2}},
		{name: "dst smaller", size: 8, pushed: 6, dstLen: 4, want: []int{0, 1, 2, 3}, wantLen: 2},
		{name: "exactly full", size: 4, pushed: 4, dstLen: 4, want: []int{0, 1, 2, 3}},
		{name: "dst larger than cap", size: 4, pushed: 4, dstLen: 10, want: []int{0, 1, 2, 3}},
		{name: "across wrap", size: 4, skip: 3, pushed: 4, dstLen: 4, want: []int{3, 4, 5, 6}},
		{name: "size one", size: 1, skip: 5, pushed: 1, dstLen: 3, want: []int{5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustNew[int](t, tt.size)
			v := 0
			for range tt.skip {
				r.TryPush(v)
				r.TryPop()
				v++
			}
			for range tt.pushed {
				if !r.TryPush(v) {
					t.Fatalf("TryPush(%d) = false", v)
				}
				v++
			}
			dst := make([]int, tt.dstLen)
			for i := range dst {
				dst[i] = -1
			}
			n := r.PopBatch(dst)
			if got := dst[:n]; !equal(got, tt.want) {
				t.Errorf("PopBatch = %v, want %v", got, tt.want)
			}
			for i := n; i < len(dst); i++ {
				if dst[i] != -1 {
					t.Errorf("PopBatch wrote dst[%d] = %d beyond its count %d", i, dst[i], n)
				}
			}
			if got := r.Len(); got != tt.wantLen {
				t.Errorf("Len() = %d, want %d", got, tt.wantLen)
			}
			// The ring must still work normally after a batch.
			if !r.TryPush(100) {
				t.Fatalf("TryPush after PopBatch = false")
			}
		})
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestPoppedSlotsZeroed checks that the ring drops its references to popped
// items, so it never keeps garbage alive.
func TestPoppedSlotsZeroed(t *testing.T) {
	tests := []struct {
		name string
		pop  func(r *Ring[*int], n int) int
	}{
		{name: "TryPop", pop: func(r *Ring[*int], n int) int {
			got := 0
			for range n {
				if v, ok := r.TryPop(); ok && v != nil {
					got++
				}
			}
			return got
		}},
		{name: "PopBatch", pop: func(r *Ring[*int], n int) int {
			dst := make([]*int, n)
			got := r.PopBatch(dst)
			for _, v := range dst[:got] {
				if v == nil {
					return -1
				}
			}
			return got
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustNew[*int](t, 8)
			// Push and pop twice so both a fresh lap and a reused lap are checked.
			for lap := range 2 {
				for i := range 6 {
					v := i
					if !r.TryPush(&v) {
						t.Fatalf("lap %d: TryPush = false", lap)
					}
				}
				if got := tt.pop(r, 6); got != 6 {
					t.Fatalf("lap %d: popped %d non-nil items, want 6", lap, got)
				}
				for i := range r.slots {
					if r.slots[i].val != nil {
						t.Errorf("lap %d: slot %d still holds %p after pop", lap, i, r.slots[i].val)
					}
				}
			}
		})
	}
}

type tagged struct {
	producer int
	seq      int
}

// TestStress runs producers and consumers at full speed on small rings and
// checks that every item arrives exactly once and that each consumer sees
// each producer's items in the order they were pushed.
func TestStress(t *testing.T) {
	tests := []struct {
		name      string
		size      int
		producers int
		consumers int
		batch     int // 0: TryPop; otherwise PopBatch with this many slots
	}{
		{name: "8x4 TryPop", size: 64, producers: 8, consumers: 4},
		{name: "4x1 PopBatch", size: 64, producers: 4, consumers: 1, batch: 32},
		{name: "8x4 PopBatch", size: 64, producers: 8, consumers: 4, batch: 16},
		{name: "4x4 size 1", size: 1, producers: 4, consumers: 4},
		{name: "4x2 size 2 PopBatch", size: 2, producers: 4, consumers: 2, batch: 8},
	}
	perProducer := 10000
	if testing.Short() {
		perProducer = 1000
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustNew[tagged](t, tt.size)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()

			got := make([][]tagged, tt.consumers)
			var producersDone atomic.Bool
			var producers, consumers sync.WaitGroup
			for p := range tt.producers {
				producers.Go(func() {
					for i := range perProducer {
						if err := r.Push(ctx, tagged{producer: p, seq: i}, 10*time.Second); err != nil {
							t.Errorf("producer %d: Push(%d): %v", p, i, err)
							cancel()
							return
						}
					}
				})
			}
			for c := range tt.consumers {
				consumers.Go(func() {
					got[c] = consume(t, ctx, r, tt.batch, tt.producers, &producersDone)
					if t.Failed() {
						cancel()
					}
				})
			}
			producers.Wait()
			producersDone.Store(true)
			consumers.Wait()
			if t.Failed() {
				return
			}

			seen := make([][]int, tt.producers)
			for p := range seen {
				seen[p] = make([]int, perProducer)
			}
			for _, items := range got {
				for _, it := range items {
					seen[it.producer][it.seq]++
				}
			}
			for p := range seen {
				for i, n := range seen[p] {
					if n != 1 {
						t.Errorf("item {producer %d, seq %d} received %d times, want 1", p, i, n)
					}
				}
			}
			if got := r.Len(); got != 0 {
				t.Errorf("Len() after drain = %d, want 0", got)
			}
			for i := range r.slots {
				if r.slots[i].val != (tagged{}) {
					t.Errorf("slot %d holds %+v after drain, want zero", i, r.slots[i].val)
				}
			}
		})
	}
}

// consume pops until ctx is done or the producers are done and the ring is
// empty, checking per-producer order as it goes. Once every Push has
// returned, every item is published, so an empty pop then means nothing is
// left for this consumer.
func consume(t *testing.T, ctx context.Context, r *Ring[tagged], batch, producers int, producersDone *atomic.Bool) []tagged {
	last := make([]int, producers)
	for i := range last {
		last[i] = -1
	}
	var out []tagged
	buf := make([]tagged, max(batch, 1))
	for ctx.Err() == nil {
		done := producersDone.Load()
		n := 0
		if batch == 0 {
			if v, ok := r.TryPop(); ok {
				buf[0] = v
				n = 1
			}
		} else {
			n = r.PopBatch(buf)
		}
		if l := r.Len(); l < 0 || l > r.Cap() {
			t.Errorf("Len() = %d, outside [0, %d]", l, r.Cap())
			return out
		}
		if n == 0 {
			if done {
				return out
			}
			runtime.Gosched()
			continue
		}
		for _, it := range buf[:n] {
			if it.seq <= last[it.producer] {
				t.Errorf("producer %d: got seq %d after %d", it.producer, it.seq, last[it.producer])
				return out
			}
			last[it.producer] = it.seq
		}
		out = append(out, buf[:n]...)
	}
	return out
}

func fill(t *testing.T, r *Ring[int]) {
	t.Helper()
	for i := range r.Cap() {
		if !r.TryPush(i) {
			t.Fatalf("TryPush(%d) = false while filling", i)
		}
	}
}

// TestPushFullTimesOut uses the real clock, so it asserts only a lower bound.
func TestPushFullTimesOut(t *testing.T) {
	r := mustNew[int](t, 4)
	fill(t, r)
	const maxWait = 50 * time.Millisecond
	start := time.Now()
	err := r.Push(t.Context(), 99, maxWait)
	elapsed := time.Since(start)
	if !errors.Is(err, ErrFull) {
		t.Fatalf("Push on full ring = %v, want ErrFull", err)
	}
	if elapsed < maxWait/2 {
		t.Errorf("Push gave up after %v, want about %v", elapsed, maxWait)
	}
	if got := r.Len(); got != 4 {
		t.Errorf("Len() = %d, want 4", got)
	}
}

func TestPushNoWait(t *testing.T) {
	tests := []struct {
		name    string
		maxWait time.Duration
	}{
		{name: "zero", maxWait: 0},
		{name: "negative", maxWait: -time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustNew[int](t, 2)
			for i := range 2 {
				if err := r.Push(t.Context(), i, tt.maxWait); err != nil {
					t.Fatalf("Push(%d) with room = %v, want nil", i, err)
				}
			}
			if err := r.Push(t.Context(), 2, tt.maxWait); !errors.Is(err, ErrFull) {
				t.Fatalf("Push on full ring = %v, want ErrFull", err)
			}
		})
	}
}

// TestPushWaitSchedule runs Push in a synctest bubble, where the clock only
// moves while every goroutine is blocked, so the wait can be checked exactly.
func TestPushWaitSchedule(t *testing.T) {
	for _, maxWait := range []time.Duration{time.Microsecond, 3 * time.Millisecond, 100 * time.Millisecond} {
		t.Run(maxWait.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := mustNew[int](t, 2)
				fill(t, r)
				start := time.Now()
				err := r.Push(t.Context(), 99, maxWait)
				elapsed := time.Since(start)
				if !errors.Is(err, ErrFull) {
					t.Fatalf("Push on full ring = %v, want ErrFull", err)
				}
				if elapsed != maxWait {
					t.Errorf("Push waited %v of fake time, want exactly %v", elapsed, maxWait)
				}
			})
		})
	}
}

func TestPushCancelled(t *testing.T) {
	tests := []struct {
		name   string
		filled bool
	}{
		{name: "full ring", filled: true},
		{name: "ring with room", filled: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustNew[int](t, 4)
			if tt.filled {
				fill(t, r)
			}
			before := r.Len()
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			if err := r.Push(ctx, 99, time.Minute); !errors.Is(err, context.Canceled) {
				t.Fatalf("Push with cancelled context = %v, want context.Canceled", err)
			}
			if got := r.Len(); got != before {
				t.Errorf("Len() = %d after refused Push, want %d", got, before)
			}
		})
	}
}

func TestPushDeadlineExceeded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew[int](t, 2)
		fill(t, r)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
		defer cancel()
		if err := r.Push(ctx, 99, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Push = %v, want context.DeadlineExceeded", err)
		}
	})
}

// TestPushCancelWhileWaiting cancels the context of a Push that is asleep
// waiting for room.
func TestPushCancelWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew[int](t, 2)
		fill(t, r)
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() { errc <- r.Push(ctx, 99, time.Hour) }()
		synctest.Wait() // Push has spun, yielded and is now asleep.
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("Push = %v, want context.Canceled", err)
		}
	})
}

// TestPushSucceedsWhenSlotFreed frees a slot while Push is asleep waiting
// for room and checks that the value lands last.
func TestPushSucceedsWhenSlotFreed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := mustNew[int](t, 4)
		fill(t, r)
		errc := make(chan error, 1)
		go func() { errc <- r.Push(t.Context(), 99, time.Hour) }()
		synctest.Wait()
		select {
		case err := <-errc:
			t.Fatalf("Push returned %v before any slot was freed", err)
		default:
		}
		if got, ok := r.TryPop(); !ok || got != 0 {
			t.Fatalf("TryPop() = %d, %t; want 0, true", got, ok)
		}
		if err := <-errc; err != nil {
			t.Fatalf("Push after a slot was freed = %v, want nil", err)
		}
		dst := make([]int, 8)
		if got, want := dst[:r.PopBatch(dst)], []int{1, 2, 3, 99}; !equal(got, want) {
			t.Errorf("ring holds %v, want %v", got, want)
		}
	})
}
