// Command asynqbench is the asynq peer of edgeq's load generators
// (scripts/pibench, edgeq bench): it drives asynq v0.26 over a Redis server
// with one workload and prints one JSON line shaped like pibench's. It is a
// module of its own so that edgeq's go.mod never requires asynq; see
// docs/BENCHMARKS.md, "Against asynq".
//
// Workloads: single (one task an Enqueue from -clients goroutines: sharing
// one asynq.Client with -shared, the "one process, 64 goroutines" case, or
// each with a client of its own holding one connection), prefill (enqueue
// -count tasks from 64 goroutines, for drain), drain (an asynq.Server with
// Concurrency -clients and a handler that does nothing, until -count tasks
// are done: each worker takes one task at a time and asynq marks it done
// before the worker takes the next).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
)

type options struct {
	workload, addr, queue string
	clients, payload      int
	count                 int
	shared                bool
	duration, timeout     time.Duration
}

// result is pibench's line.
type result struct {
	System   string  `json:"system"`
	Workload string  `json:"workload"`
	Jobs     int64   `json:"jobs"`
	Seconds  float64 `json:"seconds"`
	Rate     float64 `json:"jobs_per_s"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	Errors   int64   `json:"errors"`
	Error    string  `json:"first_error,omitempty"`
}

func main() {
	var o options
	flag.StringVar(&o.workload, "workload", "single", "single, prefill or drain")
	flag.StringVar(&o.addr, "addr", "127.0.0.1:6379", "Redis host:port (127.0.0.1 only)")
	flag.StringVar(&o.queue, "queue", "bench", "asynq queue")
	flag.IntVar(&o.clients, "clients", 64, "single: enqueueing goroutines; drain: the server's concurrency")
	flag.BoolVar(&o.shared, "shared", false, "single: the goroutines share one asynq.Client (one process), instead of a client of one connection each")
	flag.IntVar(&o.payload, "payload", 256, "payload bytes")
	flag.IntVar(&o.count, "count", 0, "prefill, drain: tasks in all")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "single: how long to run")
	flag.DurationVar(&o.timeout, "timeout", 120*time.Second, "prefill, drain: stop after this long")
	flag.Parse()
	if err := validate(o); err != nil {
		fmt.Fprintln(os.Stderr, "asynqbench:", err)
		os.Exit(2)
	}
	res, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "asynqbench:", err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
}

func validate(o options) error {
	switch {
	case !slices.Contains([]string{"single", "prefill", "drain"}, o.workload):
		return fmt.Errorf("-workload: want single, prefill or drain, got %q", o.workload)
	case o.clients < 1 || o.clients > 1000:
		return fmt.Errorf("-clients: want 1 to 1000, got %d", o.clients)
	case o.payload < 16 || o.payload > 65000:
		return fmt.Errorf("-payload: want 16 to 65000 bytes, got %d", o.payload)
	case o.count < 1 && o.workload != "single":
		return fmt.Errorf("-count: workload %s needs a positive count", o.workload)
	case o.duration <= 0 || o.timeout <= 0:
		return errors.New("-duration, -timeout: must be positive")
	}
	return nil
}

// stats gathers what the goroutines measured.
type stats struct {
	jobs, errs atomic.Int64
	mu         sync.Mutex
	lat        []time.Duration // guarded by mu
	firstErr   string          // guarded by mu
}

func (s *stats) fail(err error) {
	if s.errs.Add(1) == 1 {
		s.mu.Lock()
		s.firstErr = err.Error()
		s.mu.Unlock()
	}
}

func run(o options) (result, error) {
	redis := asynq.RedisClientOpt{Addr: o.addr}
	if o.workload == "drain" {
		return drain(o, redis)
	}
	limit, goroutines, shared := o.duration, o.clients, o.shared
	if o.workload == "prefill" {
		limit, goroutines, shared = o.timeout, 64, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	clients := make([]*asynq.Client, goroutines)
	for i := range clients {
		switch {
		case shared && i > 0:
			clients[i] = clients[0]
		case shared:
			opt := redis
			opt.PoolSize = goroutines // one connection a goroutine, as the 64 independent clients get
			clients[i] = asynq.NewClient(opt)
		default:
			opt := redis
			opt.PoolSize = 1
			clients[i] = asynq.NewClient(opt)
		}
	}
	defer func() {
		for i, c := range clients {
			if i == 0 || !shared {
				c.Close()
			}
		}
	}()
	var st stats
	var claimed atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			var lat []time.Duration
			defer func() {
				st.mu.Lock()
				st.lat = append(st.lat, lat...)
				st.mu.Unlock()
			}()
			for ctx.Err() == nil {
				if o.count > 0 && claimed.Add(1) > int64(o.count) {
					return
				}
				t0 := time.Now()
				_, err := c.EnqueueContext(ctx, asynq.NewTask("bench", payload(o.payload)), asynq.Queue(o.queue), asynq.MaxRetry(5))
				if err != nil {
					if ctx.Err() == nil {
						st.fail(err)
					}
					claimed.Add(-1)
					continue
				}
				lat = append(lat, time.Since(t0))
				st.jobs.Add(1)
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	return finish(o, &st, secs), nil
}

// drain runs an asynq.Server over the backlog until -count tasks are done.
func drain(o options, redis asynq.RedisClientOpt) (result, error) {
	var st stats
	var last atomic.Int64 // nanoseconds from start to the latest task done
	all := make(chan struct{})
	var once sync.Once
	var start time.Time
	h := asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		n := st.jobs.Add(1)
		last.Store(int64(time.Since(start)))
		if n >= int64(o.count) {
			once.Do(func() { close(all) })
		}
		return nil
	})
	srv := asynq.NewServer(redis, asynq.Config{
		Concurrency:     o.clients,
		Queues:          map[string]int{o.queue: 1},
		LogLevel:        asynq.WarnLevel,
		ShutdownTimeout: 5 * time.Second,
	})
	start = time.Now()
	if err := srv.Start(h); err != nil {
		return result{}, fmt.Errorf("start the asynq server: %w", err)
	}
	t := time.NewTimer(o.timeout)
	select {
	case <-all:
	case <-t.C:
		st.fail(fmt.Errorf("drain: %d of %d tasks done within %s", st.jobs.Load(), o.count, o.timeout))
	}
	t.Stop()
	srv.Shutdown()
	return finish(o, &st, time.Duration(last.Load()).Seconds()), nil
}

func finish(o options, st *stats, secs float64) result {
	res := result{System: "asynq", Workload: o.workload, Jobs: st.jobs.Load(), Seconds: round(secs, 2),
		Errors: st.errs.Load(), Error: st.firstErr}
	if secs > 0 {
		res.Rate = round(float64(res.Jobs)/secs, 0)
	}
	res.P50, res.P99 = pct(st.lat, 0.50), pct(st.lat, 0.99)
	return res
}

// payload is n printable bytes, as pibench sends.
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	ts := strconv.FormatInt(time.Now().UnixNano(), 10)
	copy(b, ts)
	b[len(ts)] = ' '
	return b
}

func pct(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return round(float64(d[int(p*float64(len(d)-1))])/1e6, 2)
}

func round(v float64, places int) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', places, 64), 64)
	return r
}
