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
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

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
			"consume them. Give --queue only a queue that holds nothing else.",
		Flags: clientCommandFlags(
			&cli.IntFlag{Name: "producers", Value: 64, Usage: "concurrent enqueuers"},
			&cli.IntFlag{Name: "consumers", Value: 0, Usage: "concurrent lease-and-ack workers"},
			&cli.IntFlag{Name: "payload", Value: 256, Usage: "payload bytes"},
			&cli.DurationFlag{Name: "duration", Value: 10 * time.Second, Usage: "how long to run (unless --count)"},
			&cli.IntFlag{Name: "count", Usage: "jobs to enqueue (or consume, without producers), instead of --duration"},
			&cli.IntFlag{Name: "batch", Usage: "jobs per request through /batch; 0 enqueues one a request"},
			&cli.StringFlag{Name: "queue", Value: benchQueue, Usage: "the queue, purged at the end unless --keep"},
			&cli.BoolFlag{Name: "keep", Usage: "keep the jobs left in the queue at the end"},
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
}

func bench(c *cli.Context, e env) error {
	if _, err := wantArgs(c); err != nil {
		return err
	}
	cfg := benchConfig{
		Producers: c.Int("producers"), Consumers: c.Int("consumers"), Payload: c.Int("payload"),
		Duration: c.Duration("duration"), Count: c.Int("count"), Batch: c.Int("batch"), Queue: c.String("queue"),
	}
	switch {
	case cfg.Producers < 0 || cfg.Consumers < 0 || cfg.Producers+cfg.Consumers == 0:
		return usageErrorf("--producers, --consumers: want at least one of either")
	case cfg.Producers > 10000 || cfg.Consumers > 10000:
		return usageErrorf("--producers, --consumers: at most 10000 each")
	case cfg.Payload < 0:
		return usageErrorf("--payload: must not be negative")
	case cfg.Count < 0:
		return usageErrorf("--count: must not be negative")
	case cfg.Count == 0 && cfg.Duration <= 0:
		return usageErrorf("--duration: must be positive")
	case cfg.Batch < 0 || cfg.Batch > 10000:
		return usageErrorf("--batch: want 0 to 10000, got %d", cfg.Batch)
	}
	if err := job.CheckQueueName(cfg.Queue); err != nil {
		return usageErrorf("--queue: %v", err)
	}
	if c.IsSet("count") {
		cfg.Duration = 0
	}
	conns := cfg.Producers + cfg.Consumers
	hc := &http.Client{Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns + 16,
		MaxIdleConnsPerHost: conns + 16,
		IdleConnTimeout:     90 * time.Second,
	}}
	cl := httpapi.NewClient(clientAddr(c, e), clientSetting(c, e, "token", "EDGEQ_TOKEN", ""), hc)
	defer cl.CloseIdleConnections()

	ctx, stop := signalContext(c.Context)
	defer stop()
	var progress io.Writer = c.App.ErrWriter
	r := runBench(ctx, cl, cfg, progress)
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
}

// latencySum are percentiles in milliseconds.
type latencySum struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

func printBench(w io.Writer, r benchResult) {
	fmt.Fprintf(w, "queue %s  producers %d  consumers %d  payload %dB  batch %d  elapsed %.2fs\n",
		r.Config.Queue, r.Config.Producers, r.Config.Consumers, r.Config.Payload, r.Config.Batch, r.ElapsedS)
	fmt.Fprintf(w, "enqueued %d jobs (%.0f jobs/s)\n", r.Enqueued, r.EnqueueRate)
	fmt.Fprintf(w, "consumed %d jobs (%.0f jobs/s)\n", r.Consumed, r.ConsumeRate)
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
