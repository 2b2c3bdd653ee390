package engine_test

import (
	"context"
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

// groupRun is one run of a grouped job as a worker saw it.
type groupRun struct {
	index   int // the job's place in its group's enqueue order
	attempt int
}

// TestGroupsStrictOrderUnderWorkersAndRetries: 8 pull workers take jobs of
// 12 groups (group_concurrency 1) and of no group; every third grouped job
// fails its first attempt with a delay. Each group's jobs run one at a
// time, in enqueue order, the failed one retried before the next of its
// group starts; the jobs without a group all run.
func TestGroupsStrictOrderUnderWorkersAndRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{Queues: map[string]engine.QueueConfig{"dev": {GroupConcurrency: 1}}})
		const groups, perGroup, loose = 12, 15, 40
		index := map[job.ID]int{}
		groupOf := map[job.ID]string{}
		for i := range perGroup {
			var news []job.New
			for g := range groups {
				news = append(news, job.New{Queue: "dev", Group: fmt.Sprintf("plc-%d", g), Payload: []byte(fmt.Sprint(i))})
			}
			news = append(news, job.New{Queue: "dev"})
			rs, err := e.EnqueueBatch(t.Context(), "dev", news)
			if err != nil {
				t.Fatal(err)
			}
			for k, r := range rs[:groups] {
				index[r.ID], groupOf[r.ID] = i, news[k].Group
			}
		}
		for range loose - perGroup {
			enqueue(t, e, job.New{Queue: "dev"})
		}
		total := groups*perGroup + loose

		var (
			mu      sync.Mutex
			runs    = map[string][]groupRun{}
			running = map[string]int{}
			done    int
			errs    []string
		)
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for ctx.Err() == nil {
					jobs, err := e.Lease(ctx, engine.LeaseRequest{Queue: "dev", Max: 3, Wait: time.Second, TTR: time.Hour})
					if err != nil {
						return
					}
					for _, j := range jobs {
						g := j.Group
						mu.Lock()
						if g != "" {
							running[g]++
							if running[g] > 1 {
								errs = append(errs, fmt.Sprintf("group %s: %d jobs running at once", g, running[g]))
							}
							runs[g] = append(runs[g], groupRun{index[j.ID], j.Attempt})
						}
						mu.Unlock()
						time.Sleep(time.Duration(1+int(j.ID)%5) * time.Millisecond)
						mu.Lock()
						if g != "" {
							running[g]--
						}
						fail := g != "" && index[j.ID]%3 == 1 && j.Attempt == 1
						if !fail {
							done++
						}
						mu.Unlock()
						if fail {
							_, err = e.Nack(ctx, j.ID, j.LeaseID, 50*time.Millisecond, "device busy")
						} else {
							err = e.Ack(ctx, j.ID, j.LeaseID, nil)
						}
						if err != nil && ctx.Err() == nil {
							mu.Lock()
							errs = append(errs, fmt.Sprintf("answer %s: %v", j.ID, err))
							mu.Unlock()
						}
					}
				}
			})
		}
		for range 600 {
			time.Sleep(100 * time.Millisecond)
			mu.Lock()
			n := done
			mu.Unlock()
			if n == total {
				break
			}
		}
		cancel()
		wg.Wait()
		if done != total {
			t.Fatalf("%d of %d jobs done", done, total)
		}
		for _, msg := range errs {
			t.Error(msg)
		}
		for g := range groups {
			name := fmt.Sprintf("plc-%d", g)
			var want []groupRun
			for i := range perGroup {
				want = append(want, groupRun{i, 1})
				if i%3 == 1 {
					want = append(want, groupRun{i, 2})
				}
			}
			if fmt.Sprint(runs[name]) != fmt.Sprint(want) {
				t.Errorf("group %s ran (index attempt) %v, want %v", name, runs[name], want)
			}
		}
		if s := stats(t, e, "dev"); s.Groups != 0 || s.Ready != 0 {
			t.Errorf("stats after the run: %d groups with work, %d ready; want none", s.Groups, s.Ready)
		}
	})
}

// TestBlockedGroupBlocksOnlyItself: a group whose head is running and one
// whose head waits to retry take no lease; other groups and the jobs
// without a group do, and each blocked group runs its next job once its
// head is done. Stats count the groups with work and name the oldest.
func TestBlockedGroupBlocksOnlyItself(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, memstore.New(), engine.Config{})
		add := func(group string) job.ID {
			return enqueue(t, e, job.New{Queue: "dev", Group: group}).ID
		}
		a1, a2 := add("a"), add("a")
		time.Sleep(time.Second)
		b1, b2 := add("b"), add("b")
		time.Sleep(time.Second)
		c1, c2 := add("c"), add("c")
		free := add("")

		ja := lease1(t, e, "dev", time.Hour)
		jb := lease1(t, e, "dev", time.Hour)
		if ja.ID != a1 || jb.ID != b1 {
			t.Fatalf("first leases %s, %s; want the heads of a and b (%s, %s)", ja.ID, jb.ID, a1, b1)
		}
		if _, err := e.Nack(t.Context(), jb.ID, jb.LeaseID, 10*time.Minute, "device offline"); err != nil {
			t.Fatal(err)
		}
		s := stats(t, e, "dev")
		if s.Groups != 3 || s.OldestGroup != "a" || s.OldestGroupAge != 2*time.Second || s.GroupConcurrency != 1 {
			t.Errorf("stats: %d groups, oldest %q aged %s, group concurrency %d; want 3, a, 2s, 1", s.Groups, s.OldestGroup, s.OldestGroupAge, s.GroupConcurrency)
		}
		jobs, err := e.Lease(t.Context(), engine.LeaseRequest{Queue: "dev", Max: 10, TTR: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		got := map[job.ID]bool{}
		for _, j := range jobs {
			got[j.ID] = true
		}
		if len(jobs) != 2 || !got[c1] || !got[free] {
			t.Fatalf("leased %v with a and b blocked; want only %s (head of c) and %s (no group)", jobs, c1, free)
		}
		leaseNone(t, e, "dev")
		if err := e.Ack(t.Context(), ja.ID, ja.LeaseID, nil); err != nil {
			t.Fatal(err)
		}
		if j := lease1(t, e, "dev", time.Hour); j.ID != a2 {
			t.Fatalf("after a's head was acked leased %s, want %s", j.ID, a2)
		}
		leaseNone(t, e, "dev") // b waits for its retry, c for c1
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if j := lease1(t, e, "dev", time.Hour); j.ID != b1 || j.Attempt != 2 {
			t.Fatalf("after b's retry delay leased %s attempt %d, want %s attempt 2 (before %s)", j.ID, j.Attempt, b1, b2)
		}
		leaseNone(t, e, "dev") // c2 still waits for c1
		_ = c2
	})
}

// TestGroupOrderSurvivesRestart: a job leased when the engine stops and a
// retry waiting keep their groups blocked and their places across a
// restart.
func TestGroupOrderSurvivesRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := memstore.New()
		e1, err := engine.New(engine.Config{}, st)
		if err != nil {
			t.Fatal(err)
		}
		if err := e1.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		var a, b []job.ID
		for range 3 {
			a = append(a, enqueue(t, e1, job.New{Queue: "dev", Group: "a"}).ID)
			b = append(b, enqueue(t, e1, job.New{Queue: "dev", Group: "b"}).ID)
		}
		ja := lease1(t, e1, "dev", time.Hour)
		jb := lease1(t, e1, "dev", time.Hour)
		if _, err := e1.Nack(t.Context(), jb.ID, jb.LeaseID, time.Minute, "later"); err != nil {
			t.Fatal(err)
		}
		if err := e1.Stop(t.Context()); err != nil { // a's head is still leased: a crash for it
			t.Fatal(err)
		}

		e2 := start(t, st, engine.Config{})
		if s := stats(t, e2, "dev"); s.Groups != 2 || s.Ready != 5 || s.Delayed != 1 {
			t.Fatalf("after restart: %d groups, %d ready, %d delayed; want 2, 5, 1", s.Groups, s.Ready, s.Delayed)
		}
		j := lease1(t, e2, "dev", time.Hour)
		if j.ID != ja.ID {
			t.Fatalf("after restart leased %s, want a's head %s (its lease was given back)", j.ID, ja.ID)
		}
		leaseNone(t, e2, "dev")
		if err := e2.Ack(t.Context(), j.ID, j.LeaseID, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		var order []job.ID
		for range 5 {
			j := lease1(t, e2, "dev", time.Hour)
			order = append(order, j.ID)
			if err := e2.Ack(t.Context(), j.ID, j.LeaseID, nil); err != nil {
				t.Fatal(err)
			}
		}
		for name, ids := range map[string][]job.ID{"a": a[1:], "b": b} {
			var got []job.ID
			for _, id := range order {
				if slices.Contains(ids, id) {
					got = append(got, id)
				}
			}
			if !slices.Equal(got, ids) {
				t.Errorf("group %s ran %v, want %v", name, got, ids)
			}
		}
	})
}

// TestGroupValidation: a bad group is refused, naming it, and nothing is
// written; a negative group_concurrency is refused, naming the field.
func TestGroupValidation(t *testing.T) {
	e := start(t, memstore.New(), engine.Config{})
	_, err := e.Enqueue(t.Context(), job.New{Queue: "dev", Group: "bad group"})
	if err == nil || !errors.Is(err, job.ErrInvalidArgument) || !strings.Contains(err.Error(), `group "bad group"`) {
		t.Fatalf("enqueue with group %q = %v, want an invalid argument naming it", "bad group", err)
	}
	if _, err := e.QueueStats("dev"); err == nil {
		t.Errorf("a refused job created its queue")
	}
	_, err = engine.New(engine.Config{Queues: map[string]engine.QueueConfig{"dev": {GroupConcurrency: -1}}}, memstore.New())
	if err == nil || !strings.Contains(err.Error(), "queues.dev.group_concurrency") {
		t.Fatalf("group_concurrency -1: %v, want an error naming queues.dev.group_concurrency", err)
	}
}

// TestGroupsInProcess: the scheduler's 8 workers run a queue with a
// handler whose groups take a strict order, retries included, while
// blocked groups keep no worker busy (the dispatcher sleeps: in the
// synctest bubble a spinning one would never let the clock move).
func TestGroupsInProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu   sync.Mutex
			runs = map[string][]groupRun{}
			busy = map[string]bool{}
			errs []string
			done = make(chan struct{}, 1000)
		)
		index := map[string]int{}
		h := engine.HandlerFunc(func(ctx context.Context, j *job.Job) engine.Outcome {
			mu.Lock()
			i := index[string(j.Payload)]
			if busy[j.Group] {
				errs = append(errs, fmt.Sprintf("group %s: two jobs at once", j.Group))
			}
			busy[j.Group] = true
			runs[j.Group] = append(runs[j.Group], groupRun{i, j.Attempt})
			mu.Unlock()
			time.Sleep(time.Duration(1+i%4) * time.Millisecond)
			mu.Lock()
			busy[j.Group] = false
			mu.Unlock()
			if i%4 == 2 && j.Attempt == 1 {
				return engine.Outcome{Verdict: engine.Retry, Error: "busy", RetryAfter: 20 * time.Millisecond}
			}
			done <- struct{}{}
			return engine.Outcome{Verdict: engine.Ack}
		})
		e := startSched(t, engine.Config{Workers: 8, Queues: map[string]engine.QueueConfig{"plc": {Handler: h}}}, memstore.New())
		const groups, perGroup = 6, 10
		for i := range perGroup {
			for g := range groups {
				p := fmt.Sprintf("%d/%d", g, i)
				mu.Lock()
				index[p] = i
				mu.Unlock()
				enqueue(t, e, job.New{Queue: "plc", Group: fmt.Sprintf("g%d", g), Payload: []byte(p)})
			}
		}
		for range groups * perGroup {
			<-done
		}
		mu.Lock()
		defer mu.Unlock()
		for _, msg := range errs {
			t.Error(msg)
		}
		var want []groupRun
		for i := range perGroup {
			want = append(want, groupRun{i, 1})
			if i%4 == 2 {
				want = append(want, groupRun{i, 2})
			}
		}
		for g := range groups {
			name := fmt.Sprintf("g%d", g)
			if fmt.Sprint(runs[name]) != fmt.Sprint(want) {
				t.Errorf("group %s ran %v, want %v", name, runs[name], want)
			}
		}
	})
}
