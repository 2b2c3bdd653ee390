package engine_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/memstore"
)

// events collects the engine's job events; safe for concurrent use.
type events struct {
	mu  sync.Mutex
	evs []engine.Event
}

func (c *events) add(ev engine.Event) {
	c.mu.Lock()
	c.evs = append(c.evs, ev)
	c.mu.Unlock()
}

// evicted lists the ids of the evicted jobs announced with reason.
func (c *events) evicted(reason string) []job.ID {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []job.ID
	for _, ev := range c.evs {
		if ev.Kind == engine.EventEvicted && ev.Error == reason {
			ids = append(ids, ev.ID)
		}
	}
	return ids
}

func payload(n int, tag byte) []byte { return []byte(strings.Repeat(string(tag), n)) }

// TestQueueBytes: a queue's Bytes is the payload bytes of its ready,
// delayed and leased jobs, through lease, ack and dead-lettering, and is
// rebuilt from the store after a restart.
func TestQueueBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := memstore.New()
		e := start(t, st, engine.Config{})
		enqueue(t, e, job.New{Queue: "q", Payload: payload(10, 'a')})
		enqueue(t, e, job.New{Queue: "q", Payload: payload(20, 'b')})
		enqueue(t, e, job.New{Queue: "q", Payload: payload(30, 'c'), Delay: time.Hour})
		enqueue(t, e, job.New{Queue: "q", Payload: payload(40, 'd')})
		if got := stats(t, e, "q").Bytes; got != 100 {
			t.Fatalf("Bytes after four enqueues = %d, want 100", got)
		}
		a := lease1(t, e, "q", time.Minute)
		if got := stats(t, e, "q").Bytes; got != 100 {
			t.Errorf("Bytes with one leased = %d, want 100 (leased jobs count)", got)
		}
		if err := e.Ack(t.Context(), a.ID, a.LeaseID, nil); err != nil {
			t.Fatal(err)
		}
		b := lease1(t, e, "q", time.Minute)
		if err := e.Fail(t.Context(), b.ID, b.LeaseID, "boom"); err != nil {
			t.Fatal(err)
		}
		if got := stats(t, e, "q").Bytes; got != 70 {
			t.Errorf("Bytes after an ack and a dead job = %d, want 70", got)
		}
		if err := e.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		// A restart counts the bytes of the queues bounded by bytes only:
		// counting reads each job's record.
		again := start(t, st, engine.Config{})
		if got := stats(t, again, "q"); !got.BytesUnknown {
			t.Errorf("after a restart without max_bytes: Bytes %d known, want unknown (not counted)", got.Bytes)
		}
		err := again.Reconfigure(map[string]engine.QueueConfig{"q": {MaxBytes: 1000}})
		if !errors.Is(err, job.ErrInvalidArgument) || !strings.Contains(err.Error(), "queues.q.max_bytes") {
			t.Errorf("a reload that bounds an uncounted queue by bytes: %v, want it refused naming queues.q.max_bytes", err)
		}
		if err := again.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		bounded := start(t, st, engine.Config{Queues: map[string]engine.QueueConfig{"q": {MaxBytes: 1000}}})
		if got := stats(t, bounded, "q"); got.Bytes != 70 || got.BytesUnknown {
			t.Errorf("Bytes after a restart with max_bytes = %d (unknown %v), want 70", got.Bytes, got.BytesUnknown)
		}
		fresh := start(t, memstore.New(), engine.Config{})
		enqueue(t, fresh, job.New{Queue: "new", Payload: payload(5, 'e')})
		if got := stats(t, fresh, "new"); got.Bytes != 5 || got.BytesUnknown {
			t.Errorf("a queue that was empty at the start: Bytes %d (unknown %v), want 5", got.Bytes, got.BytesUnknown)
		}
	})
}

// TestRejectNamesTheBound: on_full reject (the default) refuses a job that
// would take the queue over max_depth or max_bytes with ErrQueueFull and a
// retry-after, names the bound, and changes nothing.
func TestRejectNamesTheBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{Queues: map[string]engine.QueueConfig{
			"depth": {MaxDepth: 1},
			"bytes": {MaxBytes: 10},
		}})
		enqueue(t, e, job.New{Queue: "depth", Payload: payload(1, 'a')})
		enqueue(t, e, job.New{Queue: "bytes", Payload: payload(6, 'a')})
		for _, tt := range []struct{ queue, bound string }{{"depth", "max_depth is 1"}, {"bytes", "max_bytes is 10"}} {
			_, err := e.Enqueue(t.Context(), job.New{Queue: tt.queue, Payload: payload(6, 'b')})
			if _, ok := job.RetryAfter(err); !errors.Is(err, job.ErrQueueFull) || !ok || !strings.Contains(err.Error(), tt.bound) {
				t.Errorf("%s: over the bound = %v, want ErrQueueFull with a retry-after naming %q", tt.queue, err, tt.bound)
			}
			if s := stats(t, e, tt.queue); s.Ready != 1 || s.RejectedTotal != 1 || s.Evicted[engine.ReasonEvicted] != 0 {
				t.Errorf("%s: refused job changed the queue: %+v", tt.queue, s)
			}
		}
	})
}

// TestEvictOldest: on_full evict_oldest makes room for a new job by
// evicting the oldest waiting jobs, ready first (in the order they would
// be leased), then delayed; never a leased one. Each is counted and
// announced; nothing is evicted for a job that is refused.
func TestEvictOldest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var evs events
		e := start(t, memstore.New(), engine.Config{OnEvent: evs.add, Queues: map[string]engine.QueueConfig{
			"depth": {MaxDepth: 3, OnFull: engine.OnFullEvictOldest},
			"bytes": {MaxBytes: 10, OnFull: engine.OnFullEvictOldest},
		}})
		var ids []job.ID
		for i := range 3 {
			ids = append(ids, enqueue(t, e, job.New{Queue: "depth", Payload: payload(1, byte('a'+i))}).ID)
		}
		leased := lease1(t, e, "depth", time.Minute)
		if leased.ID != ids[0] {
			t.Fatalf("leased %s, want %s", leased.ID, ids[0])
		}
		late := enqueue(t, e, job.New{Queue: "depth", Payload: payload(1, 'l'), Delay: time.Hour}).ID // evicts ids[1]
		d := enqueue(t, e, job.New{Queue: "depth", Payload: payload(1, 'd')}).ID                      // evicts ids[2]
		f := enqueue(t, e, job.New{Queue: "depth", Payload: payload(1, 'f')}).ID                      // evicts d: ready before delayed
		synctest.Wait()
		if got, want := evs.evicted(engine.ReasonEvicted), []job.ID{ids[1], ids[2], d}; !slices.Equal(got, want) {
			t.Errorf("evicted %v, want %v (ready oldest first; the leased %s kept)", got, want, ids[0])
		}
		s := stats(t, e, "depth")
		if s.Ready != 1 || s.Delayed != 1 || s.Leased != 1 || s.Bytes != 3 || s.Evicted[engine.ReasonEvicted] != 3 || s.RejectedTotal != 0 {
			t.Errorf("stats after evictions = %+v", s)
		}
		if got := lease1(t, e, "depth", time.Minute); got.ID != f {
			t.Errorf("leased %s, want %s", got.ID, f)
		}
		g := enqueue(t, e, job.New{Queue: "depth", Payload: payload(1, 'g')}).ID // nothing ready: evicts the delayed one
		synctest.Wait()
		if got, want := evs.evicted(engine.ReasonEvicted), []job.ID{ids[1], ids[2], d, late}; !slices.Equal(got, want) {
			t.Errorf("evicted %v, want %v (then delayed)", got, want)
		}
		if got := lease1(t, e, "depth", time.Minute); got.ID != g {
			t.Errorf("leased %s, want %s", got.ID, g)
		}
		// Everything left is leased: nothing to evict, the job is refused
		// and nothing changes.
		_, err := e.Enqueue(t.Context(), job.New{Queue: "depth", Payload: payload(1, 'x')})
		if !errors.Is(err, job.ErrQueueFull) || !strings.Contains(err.Error(), "max_depth is 3") {
			t.Errorf("enqueue with only leased jobs = %v, want ErrQueueFull naming max_depth", err)
		}
		if s := stats(t, e, "depth"); s.Leased != 3 || s.Bytes != 3 || s.Evicted[engine.ReasonEvicted] != 4 || s.RejectedTotal != 1 {
			t.Errorf("refused job changed the queue: %+v", s)
		}

		// By bytes: a 6-byte job evicts as many old ones as it takes.
		first := enqueue(t, e, job.New{Queue: "bytes", Payload: payload(4, 'a')}).ID
		second := enqueue(t, e, job.New{Queue: "bytes", Payload: payload(4, 'b')}).ID
		enqueue(t, e, job.New{Queue: "bytes", Payload: payload(6, 'c')})
		enqueue(t, e, job.New{Queue: "bytes", Payload: payload(4, 'd')})
		synctest.Wait()
		if got := evs.evicted(engine.ReasonEvicted)[4:]; !slices.Equal(got, []job.ID{first, second}) {
			t.Errorf("evicted by bytes %v, want %v", got, []job.ID{first, second})
		}
		if s := stats(t, e, "bytes"); s.Bytes != 10 || s.Ready != 2 {
			t.Errorf("bytes queue = %+v, want 10 bytes in 2 jobs", s)
		}
		// A job larger than the bound alone is refused; nothing is evicted.
		_, err = e.Enqueue(t.Context(), job.New{Queue: "bytes", Payload: payload(11, 'x')})
		if !errors.Is(err, job.ErrQueueFull) || !strings.Contains(err.Error(), "max_bytes is 10") {
			t.Errorf("job over max_bytes alone = %v, want ErrQueueFull naming max_bytes", err)
		}
		if s := stats(t, e, "bytes"); s.Bytes != 10 || s.Ready != 2 || s.Evicted[engine.ReasonEvicted] != 2 {
			t.Errorf("refused job changed the queue: %+v", s)
		}
	})
}

// TestEvictOldestSameBatch: jobs enqueued in the same commit as the one
// that evicts them are evicted too (they are not in the store's indexes
// yet), and a duplicate of a waiting job evicts nothing.
func TestEvictOldestSameBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var evs events
		e := start(t, memstore.New(), engine.Config{OnEvent: evs.add, Queues: map[string]engine.QueueConfig{
			"q": {MaxDepth: 2, OnFull: engine.OnFullEvictOldest},
		}})
		batch := make([]job.New, 5)
		for i := range batch {
			batch[i] = job.New{Payload: payload(1, byte('a'+i))}
		}
		if _, err := e.EnqueueBatch(t.Context(), "q", batch); !errors.Is(err, job.ErrQueueFull) {
			t.Errorf("batch of 5 into max_depth 2 = %v, want ErrQueueFull", err)
		}
		var rs []job.Result
		for i := range 5 {
			rs = append(rs, enqueue(t, e, job.New{Queue: "q", Key: fmt.Sprint(i), Payload: payload(1, byte('a'+i))}))
		}
		if r := enqueue(t, e, job.New{Queue: "q", Key: "4"}); !r.Duplicate {
			t.Errorf("repeat of key 4 = %+v, want a duplicate", r)
		}
		synctest.Wait()
		if got, want := evs.evicted(engine.ReasonEvicted), []job.ID{rs[0].ID, rs[1].ID, rs[2].ID}; !slices.Equal(got, want) {
			t.Errorf("evicted %v, want %v", got, want)
		}
		if s := stats(t, e, "q"); s.Ready != 2 || s.Bytes != 2 {
			t.Errorf("stats = %+v, want 2 ready", s)
		}
	})
}

// TestEvictOldestConcurrent: concurrent enqueues into an evicting queue
// are all accepted and never take it over its bounds.
func TestEvictOldestConcurrent(t *testing.T) {
	const maxDepth, maxBytes, writers, each = 10, 80, 8, 50
	e := start(t, memstore.New(), engine.Config{Queues: map[string]engine.QueueConfig{
		"q": {MaxDepth: maxDepth, MaxBytes: maxBytes, OnFull: engine.OnFullEvictOldest},
	}})
	stop := make(chan struct{})
	var watcher sync.WaitGroup
	var worst engine.QueueStats
	watcher.Go(func() {
		for {
			if s, err := e.QueueStats("q"); err == nil {
				if d := s.Ready + s.Delayed + s.Leased; d > worst.Ready || s.Bytes > worst.Bytes {
					worst.Ready, worst.Bytes = max(worst.Ready, d), max(worst.Bytes, s.Bytes)
				}
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := e.Enqueue(t.Context(), job.New{Queue: "q", Payload: payload(1+(w+i)%12, 'x')}); err != nil {
					t.Errorf("enqueue: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	watcher.Wait()
	s := stats(t, e, "q")
	if worst.Ready > maxDepth || worst.Bytes > maxBytes {
		t.Errorf("the queue reached %d jobs and %d bytes, bounds %d and %d", worst.Ready, worst.Bytes, maxDepth, maxBytes)
	}
	if n := uint64(s.Ready) + s.Evicted[engine.ReasonEvicted]; s.EnqueuedTotal != writers*each || n != writers*each {
		t.Errorf("enqueued %d, ready %d + evicted %d, want %d in all", s.EnqueuedTotal, s.Ready, s.Evicted[engine.ReasonEvicted], writers*each)
	}
}

// TestMaxAge: the maintenance loop drops a waiting job once it is older
// than the queue's max_age, counted and announced like an eviction with
// reason expired_age; a leased job is left alone.
func TestMaxAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var evs events
		e := start(t, memstore.New(), engine.Config{OnEvent: evs.add, Queues: map[string]engine.QueueConfig{
			"q": {MaxAge: time.Minute},
		}})
		held := enqueue(t, e, job.New{Queue: "q", Payload: payload(3, 'a')}).ID
		old := enqueue(t, e, job.New{Queue: "q", Payload: payload(3, 'b')}).ID
		if got := lease1(t, e, "q", time.Hour); got.ID != held {
			t.Fatalf("leased %s, want %s", got.ID, held)
		}
		time.Sleep(30 * time.Second)
		young := enqueue(t, e, job.New{Queue: "q", Payload: payload(3, 'c')}).ID
		time.Sleep(30*time.Second + time.Millisecond)
		synctest.Wait()
		if got := evs.evicted(engine.ReasonExpiredAge); !slices.Equal(got, []job.ID{old}) {
			t.Errorf("dropped after 60s %v, want [%s] (the leased %s kept)", got, old, held)
		}
		if s := stats(t, e, "q"); s.Ready != 1 || s.Leased != 1 || s.Bytes != 6 || s.Evicted[engine.ReasonExpiredAge] != 1 {
			t.Errorf("stats after 60s = %+v", s)
		}
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if got := evs.evicted(engine.ReasonExpiredAge); !slices.Equal(got, []job.ID{old, young}) {
			t.Errorf("dropped after 90s %v, want [%s %s]", got, old, young)
		}
		if s := stats(t, e, "q"); s.Ready != 0 || s.Leased != 1 || s.Bytes != 3 {
			t.Errorf("stats after 90s = %+v", s)
		}
	})
}

// TestBoundConfigValidation: the bounds' configuration errors name the key.
func TestBoundConfigValidation(t *testing.T) {
	for name, tt := range map[string]struct {
		q    engine.QueueConfig
		want string
	}{
		"negative max_bytes":       {engine.QueueConfig{MaxBytes: -1}, "queues.q.max_bytes: must not be negative"},
		"negative max_age":         {engine.QueueConfig{MaxAge: -time.Second}, "queues.q.max_age: must not be negative"},
		"unknown on_full":          {engine.QueueConfig{OnFull: "drop_newest"}, `queues.q.on_full: "drop_newest" is not reject or evict_oldest`},
		"evict_oldest unbounded":   {engine.QueueConfig{OnFull: engine.OnFullEvictOldest}, "queues.q.on_full: evict_oldest needs max_depth or max_bytes"},
		"evict_oldest and max_age": {engine.QueueConfig{OnFull: engine.OnFullEvictOldest, MaxAge: time.Hour}, "queues.q.on_full: evict_oldest needs max_depth or max_bytes"},
	} {
		err := engine.Config{Queues: map[string]engine.QueueConfig{"q": tt.q}}.Validate()
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: Validate = %v, want %q", name, err, tt.want)
		}
	}
	ok := engine.Config{Queues: map[string]engine.QueueConfig{"q": {MaxBytes: 1 << 20, OnFull: engine.OnFullEvictOldest, MaxAge: time.Hour}}}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid bounds: %v", err)
	}
}
