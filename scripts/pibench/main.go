// Command pibench is the load generator of scripts/bench-pi.sh (make
// bench-pi): it drives edgeq over HTTP, Redis over RESP or beanstalkd over
// its text protocol with one workload, then prints one JSON line with the
// jobs done, the rate and the latency percentiles. Standard library only;
// see docs/BENCHMARKS.md, "Simulated appliance".
//
// Workloads: single (one job a request), batch (-batch jobs a request),
// prefill (batch until -count jobs, for drain), drain (lease and ack one at
// a time until -count jobs are acked or the backlog runs dry), mixed (edgeq
// only: a steady stream of single jobs and batches of 10 at -rate jobs/s
// onto a queue whose http handler posts them back to pibench's own no-op
// sink), fill (batch until -count jobs at full speed), wear (each client
// enqueues one job, then leases and acks one, until -count jobs are acked:
// a steady stream whose jobs are acked moments after they are enqueued).
//
// -trace reads an strace log of the daemon (bench-pi.sh TRACE=1) and prints
// what one group commit costs, by file (trace.go).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type options struct {
	system, workload, addr, queue, sink string
	clients, batch, payload, count      int
	rate                                int
	duration, timeout                   time.Duration
}

type result struct {
	System   string  `json:"system"`
	Workload string  `json:"workload"`
	Jobs     int64   `json:"jobs"`
	Seconds  float64 `json:"seconds"`
	Rate     float64 `json:"jobs_per_s"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	E2EP50   float64 `json:"e2e_p50_ms,omitempty"`
	E2EP99   float64 `json:"e2e_p99_ms,omitempty"`
	Errors   int64   `json:"errors"`
	Error    string  `json:"first_error,omitempty"`
}

// client is one connection's worth of operations against a system; each
// returns how many jobs it moved.
type client interface {
	put(payloads [][]byte) error
	take() (bool, error) // lease (reserve) one job and ack (delete) it
	close()
}

func main() {
	var o options
	flag.StringVar(&o.system, "system", "edgeq", "edgeq, edgeq-native (-addr unix:///path or native://host:port), redis or beanstalkd")
	flag.StringVar(&o.workload, "workload", "single", "single, batch, prefill, drain, mixed, fill or wear")
	flag.StringVar(&o.addr, "addr", "127.0.0.1:7070", "the system's host:port")
	flag.StringVar(&o.queue, "queue", "bench", "queue (Redis list, beanstalkd tube)")
	flag.StringVar(&o.sink, "sink", "127.0.0.1:17071", "mixed: where the no-op handler sink listens")
	flag.IntVar(&o.clients, "clients", 64, "concurrent clients")
	flag.IntVar(&o.batch, "batch", 100, "jobs a request for batch, prefill and fill")
	flag.IntVar(&o.payload, "payload", 256, "payload bytes")
	flag.IntVar(&o.count, "count", 0, "prefill, drain, fill, wear: jobs in all")
	flag.IntVar(&o.rate, "rate", 300, "mixed: jobs/s offered")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "single, batch, mixed: how long to run")
	flag.DurationVar(&o.timeout, "timeout", 120*time.Second, "prefill, drain, fill, wear: stop after this long")
	summarize := flag.String("summarize", "", "print the table of medians of this results.jsonl of bench-pi.sh, and exit")
	check := flag.String("check", "", "fail unless every run in this results.jsonl of bench-pi.sh did work, without errors, and wrote to the card through the cgroup")
	var tr traceFlags
	flag.StringVar(&tr.path, "trace", "", "print what one group commit cost from this strace log of edgeq (bench-pi.sh TRACE=1), and exit")
	flag.IntVar(&tr.from, "trace-from", 1, "-trace: count the calls from this line on (mappings are read from the start)")
	flag.StringVar(&tr.dir, "trace-dir", "", "-trace: count only the files under this directory")
	flag.Float64Var(&tr.devWIOs, "dev-wios", 0, "-trace: write IOs on the card during the traced load")
	flag.Float64Var(&tr.devWBytes, "dev-wbytes", 0, "-trace: bytes written to the card during the traced load")
	flag.Float64Var(&tr.jbd2Tx, "jbd2-tx", 0, "-trace: ext4 journal transactions during the traced load")
	flag.Float64Var(&tr.jbd2Blocks, "jbd2-blocks", 0, "-trace: ext4 journal blocks logged during the traced load")
	flag.Parse()
	if tr.path != "" {
		if err := tr.report(os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "pibench:", err)
			os.Exit(1)
		}
		return
	}
	if *summarize != "" || *check != "" {
		if err := report(*summarize, *check); err != nil {
			fmt.Fprintln(os.Stderr, "pibench:", err)
			os.Exit(1)
		}
		return
	}
	if err := validate(o); err != nil {
		fmt.Fprintln(os.Stderr, "pibench:", err)
		os.Exit(2)
	}
	res, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pibench:", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(res)
}

var (
	workloads = []string{"single", "batch", "prefill", "drain", "mixed", "fill", "wear"}
	counted   = []string{"prefill", "drain", "fill", "wear"} // bounded by -count and -timeout
)

func validate(o options) error {
	switch {
	case !slices.Contains([]string{"edgeq", "edgeq-native", "redis", "beanstalkd"}, o.system):
		return fmt.Errorf("-system: want edgeq, edgeq-native, redis or beanstalkd, got %q", o.system)
	case !slices.Contains(workloads, o.workload):
		return fmt.Errorf("-workload: want single, batch, prefill, drain, mixed, fill or wear, got %q", o.workload)
	case o.workload == "mixed" && o.system != "edgeq":
		return errors.New("-workload mixed: edgeq only (the peers run no handlers)")
	case o.clients < 1 || o.clients > 1000:
		return fmt.Errorf("-clients: want 1 to 1000, got %d", o.clients)
	case o.batch < 1 || o.batch > 1000:
		return fmt.Errorf("-batch: want 1 to 1000, got %d", o.batch)
	case o.payload < 16 || o.payload > 65000:
		return fmt.Errorf("-payload: want 16 to 65000 bytes, got %d", o.payload)
	case o.count < 1 && slices.Contains(counted, o.workload):
		return fmt.Errorf("-count: workload %s needs a positive count", o.workload)
	case o.duration <= 0 || o.timeout <= 0:
		return errors.New("-duration, -timeout: must be positive")
	case o.rate < 1:
		return fmt.Errorf("-rate: must be positive, got %d", o.rate)
	}
	return nil
}

func dial(o options) (client, error) {
	switch o.system {
	case "redis":
		c, err := net.DialTimeout("tcp", o.addr, 5*time.Second)
		if err != nil {
			return nil, err
		}
		return &redisClient{c: c, r: bufio.NewReader(c), w: bufio.NewWriter(c), list: o.queue}, nil
	case "beanstalkd":
		c, err := net.DialTimeout("tcp", o.addr, 5*time.Second)
		if err != nil {
			return nil, err
		}
		b := &beanClient{c: c, r: bufio.NewReader(c), w: bufio.NewWriter(c)}
		if err := b.useTube(o.queue); err != nil {
			c.Close()
			return nil, err
		}
		return b, nil
	case "edgeq-native":
		return newNativeClient(o)
	}
	return newEdgeqClient(o), nil
}

// stats gathers what the clients measured.
type stats struct {
	jobs, errs atomic.Int64
	mu         sync.Mutex
	lat, e2e   []time.Duration
	firstErr   string
	start      time.Time
	last       atomic.Int64 // nanoseconds from start to the latest job done
}

func (s *stats) done(n int) {
	s.jobs.Add(int64(n))
	now := int64(time.Since(s.start))
	for {
		l := s.last.Load()
		if now <= l || s.last.CompareAndSwap(l, now) {
			return
		}
	}
}

func (s *stats) fail(err error) {
	if s.errs.Add(1) == 1 {
		s.mu.Lock()
		s.firstErr = err.Error()
		s.mu.Unlock()
	}
}

func (s *stats) add(lat []time.Duration) {
	s.mu.Lock()
	s.lat = append(s.lat, lat...)
	s.mu.Unlock()
}

func run(o options) (result, error) {
	var st stats
	limit := o.duration
	if slices.Contains(counted, o.workload) {
		limit = o.timeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	if o.workload == "mixed" {
		stop, err := startSink(o.sink, &st)
		if err != nil {
			return result{}, err
		}
		defer stop()
	}
	clients := make([]client, o.clients)
	for i := range clients {
		c, err := dial(o)
		if err != nil {
			return result{}, fmt.Errorf("connect to %s at %s: %w", o.system, o.addr, err)
		}
		clients[i] = c
		defer c.close()
	}
	var claimed atomic.Int64 // jobs taken on by the clients, against -count
	start := time.Now()
	st.start = start
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.add(drive(ctx, o, i, c, &st, &claimed))
		}()
	}
	wg.Wait()
	if o.workload == "mixed" {
		// What was enqueued in the window and not yet handled is not counted.
		st.jobs.Store(int64(len(st.e2e)))
	}
	secs := time.Since(start).Seconds()
	if o.workload == "drain" {
		// The workers stop when the backlog runs dry; the wait that told
		// them so is not drain time.
		secs = time.Duration(st.last.Load()).Seconds()
	}
	res := result{System: o.system, Workload: o.workload, Jobs: st.jobs.Load(), Seconds: round(secs, 2),
		Errors: st.errs.Load(), Error: st.firstErr}
	res.Rate = round(float64(res.Jobs)/secs, 0)
	res.P50, res.P99 = pct(st.lat, 0.50), pct(st.lat, 0.99)
	res.E2EP50, res.E2EP99 = pct(st.e2e, 0.50), pct(st.e2e, 0.99)
	return res, nil
}

// drive runs one client until the context ends or the count is claimed, and
// returns the latency of each request.
func drive(ctx context.Context, o options, i int, c client, st *stats, claimed *atomic.Int64) []time.Duration {
	var lat []time.Duration
	per := 1
	switch o.workload {
	case "batch", "prefill", "fill":
		per = o.batch
	}
	payloads := make([][]byte, per)
	var tick *time.Ticker
	if o.workload == "mixed" {
		// Even clients send single jobs, odd ones batches of 10, at equal
		// shares of the rate.
		if i%2 == 1 {
			payloads = make([][]byte, 10)
		}
		every := time.Duration(float64(time.Second) * float64(len(payloads)) * float64(o.clients) / float64(o.rate))
		tick = time.NewTicker(every)
		defer tick.Stop()
	}
	for ctx.Err() == nil {
		if o.count > 0 && claimed.Add(int64(len(payloads))) > int64(o.count) {
			return lat
		}
		if tick != nil {
			select {
			case <-ctx.Done():
				return lat
			case <-tick.C:
			}
		}
		t0 := time.Now()
		var err error
		switch o.workload {
		case "wear":
			// Latency is of the whole enqueue, lease and ack.
			payloads[0] = payload(o.payload, t0)
			if err = c.put(payloads); err == nil {
				err = takeOne(ctx, c)
			}
		case "drain":
			var got bool
			got, err = c.take()
			if err == nil && !got {
				return lat // the backlog ran dry
			}
		default:
			for k := range payloads {
				payloads[k] = payload(o.payload, t0)
			}
			err = c.put(payloads)
		}
		if err != nil {
			if ctx.Err() == nil {
				st.fail(err)
			}
			claimed.Add(-int64(len(payloads)))
			continue
		}
		lat = append(lat, time.Since(t0))
		st.done(len(payloads))
	}
	return lat
}

// takeOne leases and acks one job, waiting (in the lease's long polls) while
// other clients hold the jobs there are, until ctx ends.
func takeOne(ctx context.Context, c client) error {
	for ctx.Err() == nil {
		got, err := c.take()
		if err != nil || got {
			return err
		}
	}
	return ctx.Err()
}

// payload is n printable bytes starting with the send time in Unix
// nanoseconds, which the mixed workload's sink reads back.
func payload(n int, t time.Time) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	ts := strconv.FormatInt(t.UnixNano(), 10)
	copy(b, ts)
	b[len(ts)] = ' '
	return b
}

func startSink(addr string, st *stats) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mixed: sink: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if sp := bytes.IndexByte(b, ' '); sp > 0 {
			if ns, err := strconv.ParseInt(string(b[:sp]), 10, 64); err == nil {
				st.mu.Lock()
				st.e2e = append(st.e2e, time.Since(time.Unix(0, ns)))
				st.mu.Unlock()
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	go srv.Serve(ln)
	return func() { srv.Close() }, nil
}

func pct(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return round(float64(d[int(p*float64(len(d)-1))])/1e6, 2)
}

func round(v float64, places int) float64 {
	s := strconv.FormatFloat(v, 'f', places, 64)
	r, _ := strconv.ParseFloat(s, 64)
	return r
}
