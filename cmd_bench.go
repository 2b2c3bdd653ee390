package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/httpapi"
)

func benchCommand(e env) *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "load generator: enqueue (and lease and ack) against a running daemon",
		Description: "Producers enqueue jobs of --payload random bytes, one a request or --batch\n" +
			"lines a request; consumers lease up to 100 jobs (long poll 1s) and ack them. It\n" +
			"runs for --duration, or until --count jobs are enqueued (consumed, without\n" +
			"producers), printing progress on standard error every second, then the rates,\n" +
			"the latency percentiles of each kind of request and the errors by code.\n\n" +
			"It works on a queue of its own, edgeq-bench, and purges the jobs left in it (ready\n" +
			"and delayed) at the end, unless --keep: a later run with --producers 0 can then\n" +
			"consume them. Give --queue only a queue that holds nothing else.\n\n" +
			"--coalesce turns on the client's group commit (concurrent enqueues share batch\n" +
			"requests, concurrent acks share POST /v1/acks); --lease-max 1 makes consumers\n" +
			"take one job at a time, and --pipeline has each consumer lease its next job while\n" +
			"the last one's ack is in flight, or --ack-lease has each consumer ack the jobs it\n" +
			"finished in its next lease request (one request and one commit for both).\n\n" +
			"--native ADDR sends the job operations over the native protocol (unix:///path or\n" +
			"native://host:port, docs/protocol.md), pipelined on --native-conns connections,\n" +
			"each consumer's long polls on one of its own; with --coalesce, concurrent\n" +
			"enqueues share batch frames. The purge at the end still goes to --addr over HTTP.\n\n" +
			"With --pid, the daemon's CPU time (user plus system, from /proc/PID/stat) over\n" +
			"the run is reported, and divided by the jobs enqueued (by those consumed when\n" +
			"there are no producers): the daemon's CPU per job without the load generator's.",
		Flags: clientCommandFlags(
			&cli.IntFlag{Name: "producers", Value: 64, Usage: "concurrent enqueuers"},
			&cli.IntFlag{Name: "consumers", Value: 0, Usage: "concurrent lease-and-ack workers"},
			&cli.IntFlag{Name: "payload", Value: 256, Usage: "payload bytes"},
			&cli.DurationFlag{Name: "duration", Value: 10 * time.Second, Usage: "how long to run (unless --count)"},
			&cli.IntFlag{Name: "count", Usage: "jobs to enqueue (or consume, without producers), instead of --duration"},
			&cli.IntFlag{Name: "batch", Usage: "jobs per request through /batch; 0 enqueues one a request"},
			&cli.StringFlag{Name: "queue", Value: benchQueue, Usage: "the queue, purged at the end unless --keep"},
			&cli.BoolFlag{Name: "keep", Usage: "keep the jobs left in the queue at the end"},
			&cli.BoolFlag{Name: "coalesce", Usage: "group concurrent enqueues into batch requests and acks into POST /v1/acks"},
			&cli.IntFlag{Name: "in-flight", Value: 1, Usage: "with --coalesce: grouped requests in flight at once (1 to 16)"},
			&cli.IntFlag{Name: "lease-max", Value: engine.MaxLease, Usage: "jobs a consumer leases at once (1 to 100)"},
			&cli.BoolFlag{Name: "pipeline", Usage: "consumers lease the next jobs while the last ack is in flight"},
			&cli.BoolFlag{Name: "ack-lease", Usage: "consumers ack the jobs they finished in their next lease request"},
			&cli.IntFlag{Name: "pid", Usage: "the daemon's process id: report its CPU time over the run, and per job (Linux)"},
			nativeFlag(),
			&cli.IntFlag{Name: "native-conns", Value: 2, Usage: "with --native: connections the producers' and acks' pipelined calls share (1 to 1024)"},
		),
		Action: func(c *cli.Context) error { return bench(c, e) },
	}
}

// benchQueue is the queue of `edgeq bench` unless --queue names another.
const benchQueue = "edgeq-bench"

// benchConfig is what the flags of `edgeq bench` ask for.
type benchConfig struct {
	Producers int           `json:"producers"`
	Consumers int           `json:"consumers"`
	Payload   int           `json:"payload"`
	Duration  time.Duration `json:"-"`
	Count     int           `json:"count,omitempty"`
	Batch     int           `json:"batch"`
	Queue     string        `json:"queue"`
	Coalesce  bool          `json:"coalesce,omitempty"`
	InFlight  int           `json:"in_flight,omitempty"`
	LeaseMax  int           `json:"lease_max"`
	Pipeline  bool          `json:"pipeline,omitempty"`
	AckLease  bool          `json:"ack_lease,omitempty"`
	// Native: the job operations went over the native protocol (--native),
	// on NativeConns shared connections.
	Native      bool `json:"native,omitempty"`
	NativeConns int  `json:"native_conns,omitempty"`
}

func bench(c *cli.Context, e env) error {
	if _, err := wantArgs(c); err != nil {
		return err
	}
	cfg, err := benchConfigOf(c, e)
	if err != nil {
		return err
	}
	pid := c.Int("pid")
	var cpu0 time.Duration
	if c.IsSet("pid") {
		if pid <= 0 {
			return usageErrorf("--pid: want a process id above 0, got %d", pid)
		}
		if cpu0, err = procCPU(pid); err != nil {
			return fmt.Errorf("--pid %d: read its CPU time: %w", pid, err)
		}
	}
	cl, err := benchClient(c, e, cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	var jc jobClient = cl
	if cfg.Native {
		nc, err := nativeClient(c, e, cfg.NativeConns, cfg.Coalesce)
		if err != nil {
			return err
		}
		defer nc.Close()
		jc = nc
	}

	ctx, stop := signalContext(c.Context)
	defer stop()
	var progress io.Writer = c.App.ErrWriter
	r := runBench(ctx, jc, cfg, progress)
	if c.IsSet("pid") {
		cpu1, err := procCPU(pid)
		if err != nil {
			return fmt.Errorf("--pid %d: read its CPU time: %w", pid, err)
		}
		r.DaemonCPU = newDaemonCPU(pid, cpu1-cpu0, r)
	}
	// Clean up also after an interrupt, which cancelled ctx.
	cleanCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), clientTimeout)
	defer cancel()
	cleanErr := benchCleanUp(cleanCtx, cl, cfg.Queue, c.Bool("keep"), &r, c.App.ErrWriter)
	if c.Bool("json") {
		if err := printJSON(c.App.Writer, r); err != nil {
			return err
		}
	} else {
		printBench(c.App.Writer, r)
	}
	switch {
	case cleanErr != nil:
		return cleanErr
	case r.Enqueued+r.Consumed > 0 || len(r.Errors) == 0:
	case r.Errors["unauthorized"] > 0:
		return errors.New("bench: no request succeeded: unauthorized: " + tokenHint)
	default:
		return errors.New("bench: no request succeeded")
	}
	return nil
}

// benchConfigOf reads and checks the flags of a run.
func benchConfigOf(c *cli.Context, e env) (benchConfig, error) {
	cfg := benchConfig{
		Producers: c.Int("producers"), Consumers: c.Int("consumers"), Payload: c.Int("payload"),
		Duration: c.Duration("duration"), Count: c.Int("count"), Batch: c.Int("batch"), Queue: c.String("queue"),
		Coalesce: c.Bool("coalesce"), InFlight: c.Int("in-flight"), LeaseMax: c.Int("lease-max"), Pipeline: c.Bool("pipeline"),
		AckLease: c.Bool("ack-lease"),
	}
	if cfg.Native = clientSetting(c, e, "native", "EDGEQ_NATIVE", "") != ""; cfg.Native {
		cfg.NativeConns = c.Int("native-conns")
	}
	switch {
	case cfg.Producers < 0 || cfg.Consumers < 0 || cfg.Producers+cfg.Consumers == 0:
		return cfg, usageErrorf("--producers, --consumers: want at least one of either")
	case cfg.Producers > 10000 || cfg.Consumers > 10000:
		return cfg, usageErrorf("--producers, --consumers: at most 10000 each")
	case cfg.Payload < 0:
		return cfg, usageErrorf("--payload: must not be negative")
	case cfg.Count < 0:
		return cfg, usageErrorf("--count: must not be negative")
	case cfg.Count == 0 && cfg.Duration <= 0:
		return cfg, usageErrorf("--duration: must be positive")
	case cfg.Batch < 0 || cfg.Batch > 10000:
		return cfg, usageErrorf("--batch: want 0 to 10000, got %d", cfg.Batch)
	case cfg.InFlight < 1 || cfg.InFlight > 16:
		return cfg, usageErrorf("--in-flight: want 1 to 16, got %d", cfg.InFlight)
	case cfg.Native && (cfg.NativeConns < 1 || cfg.NativeConns > 1024):
		return cfg, usageErrorf("--native-conns: want 1 to 1024, got %d", cfg.NativeConns)
	case cfg.AckLease && cfg.Pipeline:
		return cfg, usageErrorf("--ack-lease, --pipeline: choose one (--ack-lease sends the acks with the next lease)")
	case cfg.LeaseMax < 1 || cfg.LeaseMax > engine.MaxLease:
		return cfg, usageErrorf("--lease-max: want 1 to %d, got %d", engine.MaxLease, cfg.LeaseMax)
	}
	if err := job.CheckQueueName(cfg.Queue); err != nil {
		return cfg, usageErrorf("--queue: %v", err)
	}
	if c.IsSet("count") {
		cfg.Duration = 0
	}
	return cfg, nil
}

// benchClient is the client of a run: enough idle connections for every
// producer and consumer, coalescing when asked.
func benchClient(c *cli.Context, e env, cfg benchConfig) (*httpapi.Client, error) {
	conns := cfg.Producers + cfg.Consumers
	hc := &http.Client{Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns + 16,
		MaxIdleConnsPerHost: conns + 16,
		IdleConnTimeout:     90 * time.Second,
	}}
	cl := httpapi.NewClient(clientAddr(c, e), clientSetting(c, e, "token", "EDGEQ_TOKEN", ""), hc)
	if cfg.Coalesce {
		if err := cl.Coalesce(httpapi.Coalescing{InFlight: cfg.InFlight}); err != nil {
			return nil, err
		}
	}
	return cl, nil
}

// benchCleanUp purges the jobs a run left in its queue (r.Purged), or with
// keep says how many stay, on w.
func benchCleanUp(ctx context.Context, cl *httpapi.Client, queue string, keep bool, r *benchResult, w io.Writer) error {
	if keep {
		q, err := cl.Queue(ctx, queue)
		if err != nil {
			if errors.Is(err, job.ErrNotFound) || errors.Is(err, job.ErrUnknownQueue) {
				return nil // nothing was enqueued
			}
			return clientError("count the jobs left in "+queue, err)
		}
		fmt.Fprintf(w, "kept %d jobs in %s\n", q.Ready+q.Delayed, queue)
		return nil
	}
	n, err := cl.Purge(ctx, queue)
	if err != nil {
		if errors.Is(err, job.ErrNotFound) || errors.Is(err, job.ErrUnknownQueue) {
			return nil
		}
		return clientError("purge "+queue, err)
	}
	r.Purged = n
	if n > 0 {
		fmt.Fprintf(w, "purged %d jobs left in %s (--keep keeps them)\n", n, queue)
	}
	return nil
}

// benchResult is the outcome of a run; --json prints it.
type benchResult struct {
	Config      benchConfig           `json:"config"`
	ElapsedS    float64               `json:"elapsed_s"`
	Enqueued    int64                 `json:"enqueued"`
	Consumed    int64                 `json:"consumed"`
	EnqueueRate float64               `json:"enqueued_per_s"`
	ConsumeRate float64               `json:"consumed_per_s"`
	Latency     map[string]latencySum `json:"latency_ms"` // by request: enqueue, batch, lease, ack
	Errors      map[string]int64      `json:"errors"`     // by code
	Purged      int                   `json:"purged"`     // jobs left in the queue and purged at the end
	DaemonCPU   *daemonCPU            `json:"daemon_cpu,omitempty"`
}

// latencySum are percentiles in milliseconds.
type latencySum struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// benchStats are the counters and histograms the goroutines of a run
// share.
type benchStats struct {
	enqueued, consumed atomic.Int64
	errCount           atomic.Int64
	// allConsumed is closed once consumed reaches consumeGoal (> 0 only
	// in --count mode without producers), so that the run ends then and
	// not at the next progress tick.
	consumeGoal int64
	allConsumed chan struct{}
	closeOnce   sync.Once

	mu     sync.Mutex
	hists  map[string]*histogram // guarded by mu; merged from each goroutine's at its end
	errors map[string]int64      // guarded by mu
}

func (s *benchStats) addErr(err error) {
	code := "transport"
	var ae *httpapi.APIError
	if errors.As(err, &ae) {
		code = ae.Code
	}
	s.errCount.Add(1)
	s.mu.Lock()
	s.errors[code]++
	s.mu.Unlock()
}

// consumedOne counts a job consumed.
func (s *benchStats) consumedOne() {
	if n := s.consumed.Add(1); s.consumeGoal > 0 && n >= s.consumeGoal {
		s.closeOnce.Do(func() { close(s.allConsumed) })
	}
}

func (s *benchStats) merge(name string, h *histogram) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hists[name] == nil {
		s.hists[name] = newHistogram()
	}
	s.hists[name].merge(h)
}

func printBench(w io.Writer, r benchResult) {
	fmt.Fprintf(w, "queue %s  producers %d  consumers %d  payload %dB  batch %d  elapsed %.2fs\n",
		r.Config.Queue, r.Config.Producers, r.Config.Consumers, r.Config.Payload, r.Config.Batch, r.ElapsedS)
	fmt.Fprintf(w, "enqueued %d jobs (%.0f jobs/s)\n", r.Enqueued, r.EnqueueRate)
	fmt.Fprintf(w, "consumed %d jobs (%.0f jobs/s)\n", r.Consumed, r.ConsumeRate)
	if d := r.DaemonCPU; d != nil {
		fmt.Fprintf(w, "daemon (pid %d) CPU %.2fs: %.1f µs per job %s\n", d.PID, d.Seconds, d.USPerJob, d.Per)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "request\tcount\tp50 ms\tp90 ms\tp99 ms\tmax ms\t")
	for _, name := range []string{"enqueue", "batch", "lease", "ack"} {
		l, ok := r.Latency[name]
		if !ok || l.Count == 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t\n", name, l.Count, l.P50, l.P90, l.P99, l.Max)
	}
	_ = tw.Flush()
	if len(r.Errors) == 0 {
		fmt.Fprintln(w, "errors: none")
		return
	}
	codes := slices.Sorted(func(yield func(string) bool) {
		for k := range r.Errors {
			if !yield(k) {
				return
			}
		}
	})
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%s %d", c, r.Errors[c]))
	}
	fmt.Fprintf(w, "errors: %s\n", strings.Join(parts, ", "))
}
