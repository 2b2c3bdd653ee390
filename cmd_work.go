package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/edgeq/edgeq/engine"
	exechandler "github.com/edgeq/edgeq/engine/handler/exec"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/httpapi"
)

// Settings of `edgeq work`.
const (
	workDefaultWait  = 30 * time.Second
	workDefaultGrace = 30 * time.Second
	// workNoTimeout stands for "no --timeout": the exec handler wants one.
	workNoTimeout = 100 * 365 * 24 * time.Hour
	// workRetryPause is the pause after a failed /lease before the next.
	workRetryPause = time.Second
	// workResolveTimeout bounds the ack, nack or fail of a finished job.
	workResolveTimeout = 30 * time.Second
	// workMaxResult is how much stdout --result sends: the largest
	// max_result (the daemon cuts it at the queue's own).
	workMaxResult = 1 << 20
)

func workCommand(e env) *cli.Command {
	return &cli.Command{
		Name:      "work",
		Usage:     "pull jobs from a queue and run a command for each",
		ArgsUsage: "QUEUE -- COMMAND [ARGS...]",
		Description: "Leases jobs over HTTP and runs COMMAND (without a shell) for each, in a process\n" +
			"group of its own, with the payload on standard input and EDGEQ_JOB_ID, EDGEQ_QUEUE\n" +
			"and EDGEQ_ATTEMPT in its environment (as well as PATH); its standard output is\n" +
			"discarded. Exit 0 acks the job, 65\n" +
			"(EX_DATAERR) sends it dead at once, any other status retries it with the tail of\n" +
			"stderr as its last_error. The lease is extended at half its TTR while the command\n" +
			"runs. While commands run, the worker already leases up to --prefetch more jobs\n" +
			"(their leases extended too), so the next one starts as soon as a slot is free.\n" +
			"A job's ack rides on the next lease request (one request and one commit on the\n" +
			"daemon for both); while the worker long polls an empty queue, acks go alone, in\n" +
			"batches (POST /v1/acks). On\n" +
			"SIGINT or SIGTERM the worker stops leasing, releases the jobs it leased ahead, lets\n" +
			"running commands finish for --grace, then kills their process groups and releases\n" +
			"their jobs.\n\n" +
			"With --native ADDR (unix:///path or native://host:port) it speaks the native\n" +
			"protocol (docs/protocol.md) instead of HTTP: each long poll on a connection of its\n" +
			"own, the acks and other answers pipelined on shared ones.\n\n" +
			"It says on standard error when it starts (queue, concurrency, command), and a line\n" +
			"per job that fails (with --verbose, per job); --json prints these on standard\n" +
			"output instead, one JSON object a line: {\"event\":\"start\",\"queue\",\"concurrency\",\n" +
			"\"command\"}, then {\"event\":\"done|retry|dead|released\",\"id\",\"queue\",\"attempt\",\n" +
			"\"duration_s\",\"state\",\"error\"}.",
		Flags: clientCommandFlags(
			&cli.IntFlag{Name: "concurrency", Aliases: []string{"c"}, Value: 1, Usage: "commands run at once"},
			&cli.IntFlag{Name: "prefetch", Value: -1, Usage: "jobs leased ahead while commands run (0: none)", DefaultText: "--concurrency"},
			&cli.DurationFlag{Name: "ttr", Usage: "lease time to run, extended while the command runs", DefaultText: "the queue's"},
			&cli.DurationFlag{Name: "wait", Value: workDefaultWait, Usage: "long poll of each lease request (at most 60s)"},
			&cli.DurationFlag{Name: "grace", Value: workDefaultGrace, Usage: "on SIGINT or SIGTERM, how long running commands may finish"},
			&cli.DurationFlag{Name: "timeout", Usage: "kill a command that runs longer, and retry its job", DefaultText: "none"},
			&cli.BoolFlag{Name: "verbose", Usage: "a line per job, also for those done"},
			nativeFlag(),
			&cli.BoolFlag{Name: "result", Usage: "send the command's stdout (its first MiB) with the ack as the job's result, kept by queues with retain_done"},
		),
		Action: func(c *cli.Context) error { return work(c, e) },
	}
}

func work(c *cli.Context, e env) error {
	args := c.Args().Slice()
	if len(args) < 2 {
		return usageErrorf("work: want QUEUE -- COMMAND [ARGS...]")
	}
	queue, argv := args[0], args[1:]
	if err := job.CheckQueueName(queue); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	w := &worker{
		queue:       queue,
		concurrency: c.Int("concurrency"),
		prefetch:    c.Int("prefetch"),
		ttr:         c.Duration("ttr"),
		wait:        c.Duration("wait"),
		grace:       c.Duration("grace"),
		verbose:     c.Bool("verbose"),
		log:         c.App.ErrWriter,
	}
	if c.Bool("json") {
		w.events = c.App.Writer
	}
	switch {
	case w.concurrency < 1 || w.concurrency > 1000:
		return usageErrorf("--concurrency: want 1 to 1000, got %d", w.concurrency)
	case w.prefetch < -1 || w.prefetch > 1000:
		return usageErrorf("--prefetch: want 0 to 1000, got %d", w.prefetch)
	case w.ttr < 0:
		return usageErrorf("--ttr: must not be negative")
	case w.ttr > 0 && w.ttr < 10*time.Millisecond:
		return usageErrorf("--ttr: at least 10ms")
	case w.wait < 0 || w.wait > time.Minute:
		return usageErrorf("--wait: want 0 to 60s, got %s", w.wait)
	case w.grace < 0:
		return usageErrorf("--grace: must not be negative")
	case c.Duration("timeout") < 0:
		return usageErrorf("--timeout: must not be negative")
	}
	timeout := c.Duration("timeout")
	if timeout == 0 {
		timeout = workNoTimeout
	}
	result := workResult(c)
	h, err := exechandler.New(exechandler.Config{Command: argv, Timeout: timeout, Result: result})
	if err != nil {
		return usageErrorf("work: %v", err)
	}
	if w.prefetch == -1 {
		w.prefetch = w.concurrency
	}
	w.h = h
	nc, err := nativeClient(c, e, 0, false)
	if err != nil {
		return err
	}
	if nc != nil {
		if result > 0 {
			nc.Close()
			return usageErrorf("--result: the native protocol's ack carries no result; use the HTTP API")
		}
		w.cl = nc
	} else {
		hc := newClient(c, e)
		if err := hc.Coalesce(httpapi.Coalescing{}); err != nil { // acks in POST /v1/acks batches
			return err
		}
		w.cl = hc
	}
	defer w.cl.Close()
	ctx, stop := signalContext(c.Context)
	defer stop()
	if w.events != nil {
		w.emit(workEvent{Event: "start", Queue: queue, Concurrency: w.concurrency, Command: argv})
	} else {
		w.logf("leasing from %s with concurrency %d: %s", queue, w.concurrency, commandLine(argv))
	}
	return w.run(ctx)
}

// commandLine shows argv on one line, quoting (as Go does) the arguments
// that hold blanks, quotes or shell characters.
func commandLine(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		parts[i] = a
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`") {
			parts[i] = strconv.Quote(a)
		}
	}
	return strings.Join(parts, " ")
}

// workEvent is a line of `edgeq work --json`: the start of the worker, or
// the outcome of a job.
type workEvent struct {
	Event       string   `json:"event"` // start, done, retry, dead, released
	Queue       string   `json:"queue"`
	Concurrency int      `json:"concurrency,omitempty"` // start
	Command     []string `json:"command,omitempty"`     // start
	ID          string   `json:"id,omitempty"`
	Attempt     int      `json:"attempt,omitempty"`
	DurationS   float64  `json:"duration_s,omitempty"` // how long the command ran
	State       string   `json:"state,omitempty"`      // of a retried job: delayed or ready
	Error       string   `json:"error,omitempty"`
}

// worker is the pull loop of `edgeq work`: it owns the goroutines that run
// commands and waits for them before run returns.
type worker struct {
	cl          jobClient // HTTP, or the native protocol with --native
	h           *exechandler.Handler
	queue       string
	concurrency int
	prefetch    int           // jobs leased ahead of the free slots
	ttr         time.Duration // 0: the queue's
	wait        time.Duration
	grace       time.Duration
	verbose     bool      // a line per job, not only per failed one
	log         io.Writer // text lines
	events      io.Writer // --json: JSON lines instead of text ones; nil without

	running atomic.Int64 // commands running
	rides   ackRides     // acks for the lease loop's next request

	logMu sync.Mutex // serialises lines on log
}

func (w *worker) logf(format string, args ...any) {
	w.logMu.Lock()
	defer w.logMu.Unlock()
	fmt.Fprintf(w.log, "edgeq work: "+format+"\n", args...)
}

func (w *worker) emit(ev workEvent) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		w.logf("encode event: %v", err)
		return
	}
	w.logMu.Lock()
	defer w.logMu.Unlock()
	_, _ = w.events.Write(b.Bytes())
}

// report says how a job ended: always for a failure, with --verbose also
// for a job done.
func (w *worker) report(ev workEvent) {
	if ev.Event == "done" && !w.verbose {
		return
	}
	if w.events != nil {
		w.emit(ev)
		return
	}
	took := time.Duration(ev.DurationS * float64(time.Second)).Round(time.Millisecond)
	switch ev.Event {
	case "done":
		w.logf("job %s: done after attempt %d in %s", ev.ID, ev.Attempt, took)
	case "retry":
		w.logf("job %s: retry (%s) after attempt %d in %s: %s", ev.ID, ev.State, ev.Attempt, took, ev.Error)
	default:
		w.logf("job %s: %s after attempt %d in %s: %s", ev.ID, ev.Event, ev.Attempt, took, ev.Error)
	}
}

// run leases and runs jobs until ctx ends, then lets the running commands
// finish for the grace period, kills the rest and releases their jobs.
// It returns nil after a shutdown, an error when the daemon refuses the
// worker for good (a bad queue, a bad token).
func (w *worker) run(ctx context.Context) error {
	// Commands outlive ctx by up to the grace period; kill ends them.
	jobCtx, kill := context.WithCancel(context.WithoutCancel(ctx))
	defer kill()
	p := &pipeline{
		held: make(chan struct{}, w.concurrency+w.prefetch),
		run:  make(chan struct{}, w.concurrency),
	}
	for range w.concurrency + w.prefetch {
		p.held <- struct{}{}
	}
	for range w.concurrency {
		p.run <- struct{}{}
	}
	var wg sync.WaitGroup
	err := w.leaseLoop(ctx, jobCtx, p, &wg)
	if w.running.Load() == 0 {
		wg.Wait() // the last goroutines may be handing back their slots
		return err
	}

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	default:
		w.logf("stopping: waiting up to %s for %d running commands", w.grace, w.running.Load())
		t := time.NewTimer(w.grace)
		select {
		case <-done:
		case <-t.C:
			w.logf("grace period over: killing running commands and releasing their jobs")
			kill()
			<-done
		}
		t.Stop()
	}
	return err
}

// pipeline holds the worker's two kinds of slot, a token in a channel
// each: held bounds the jobs leased and not yet finished running
// (--concurrency plus --prefetch), run the commands running.
type pipeline struct {
	held chan struct{}
	run  chan struct{}
}

func (w *worker) leaseLoop(ctx, jobCtx context.Context, p *pipeline, wg *sync.WaitGroup) error {
	defer func() { w.ackAlone(jobCtx, w.rides.stop()) }()
	for {
		// Wait for a free slot, then take every other free one.
		select {
		case <-ctx.Done():
			return nil
		case <-p.held:
		}
		n := 1
	more:
		for n < min(cap(p.held), engine.MaxLease) {
			select {
			case <-p.held:
				n++
			default:
				break more
			}
		}
		jobs, err := w.lease(ctx, jobCtx, n)
		for range n - len(jobs) {
			p.held <- struct{}{}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ae *httpapi.APIError
			if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Status != http.StatusTooManyRequests {
				return clientError("lease from "+w.queue, err)
			}
			retryIn := workRetryPause
			if ae != nil && ae.RetryAfter > 0 {
				retryIn = ae.RetryAfter
			}
			w.logf("lease from %s: %v (retrying in %s)", w.queue, err, retryIn)
			t := time.NewTimer(retryIn)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			continue
		}
		for _, j := range jobs {
			wg.Go(func() { w.runJob(ctx, jobCtx, p, j) })
		}
	}
}

// runJob runs the command for one leased job once a run slot is free,
// extending the lease from the lease on, and answers the daemon with the
// outcome. Its held slot is freed when the command ends, so the next lease
// goes out while the answer does. A job still waiting for a slot when ctx
// (the worker's) ends is released without running; jobCtx ends the
// command.
func (w *worker) runJob(ctx, jobCtx context.Context, p *pipeline, lj httpapi.Job) {
	freeHeld := sync.OnceFunc(func() { p.held <- struct{}{} })
	defer freeHeld()
	id, err := job.ParseID(lj.ID)
	if err != nil || lj.Lease == nil {
		w.logf("job %q: leased without an id or lease: skipped", lj.ID)
		return
	}
	lease := lj.Lease.ID
	j := &job.Job{ID: id, Queue: lj.Queue, Attempt: lj.Attempt, Payload: lj.Body()}

	extCtx, stopExt := context.WithCancel(context.WithoutCancel(jobCtx))
	var ext sync.WaitGroup
	ext.Go(func() { w.extendLoop(extCtx, lj.ID, lease, lj.Lease.ExpiresAt) })
	defer ext.Wait()
	defer stopExt()
	ev := workEvent{ID: lj.ID, Queue: lj.Queue, Attempt: lj.Attempt}
	// The answer's own deadline starts once there is an answer to give.
	resolveCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(jobCtx), workResolveTimeout)
	}

	started := false
	select {
	case <-p.run:
		// Counted before ctx is checked: run, which reads the count once
		// ctx has ended, sees every command that starts.
		w.running.Add(1)
		if started = ctx.Err() == nil; !started {
			w.running.Add(-1)
			p.run <- struct{}{}
		}
	case <-ctx.Done():
	}
	if !started {
		stopExt()
		ev.Event, ev.Error = "released", "worker shut down before the command ran"
		rctx, cancel := resolveCtx()
		defer cancel()
		w.resolved(ev, lj.ID, w.release(rctx, lj.ID, lease, ev.Error))
		return
	}
	t0 := time.Now()
	out := w.h.Handle(jobCtx, j)
	ev.DurationS = time.Since(t0).Seconds()
	w.running.Add(-1)
	p.run <- struct{}{}
	stopExt()
	// An ack is offered to the next lease request before the slot is
	// freed: the freed slot is what sends that request.
	var ride chan error
	if _, withResult := w.cl.(resultAcker); jobCtx.Err() == nil && out.Verdict == engine.Ack && (!withResult || out.Result == "") {
		ride = w.rides.offer(lj.ID, lease)
	}
	freeHeld()

	rctx, cancel := resolveCtx()
	defer cancel()
	ev.Error = oneLine(out.Error, 200)
	ev, err = w.answer(rctx, jobCtx, ev, lease, out, ride)
	w.resolved(ev, lj.ID, err)
}

// answer tells the daemon how the command of job ev.ID ended, or waits
// for the lease request that carries its ack (ride), and answers ev
// completed and the daemon's error.
func (w *worker) answer(ctx, jobCtx context.Context, ev workEvent, lease string, out engine.Outcome, ride chan error) (workEvent, error) {
	var err error
	switch {
	case ride != nil:
		ev.Event = "done"
		err = <-ride
	case jobCtx.Err() != nil:
		// Killed at the end of the grace period: hand the job back now.
		ev.Event, ev.Error = "released", "worker shut down while the command ran"
		err = w.release(ctx, ev.ID, lease, ev.Error)
	case out.Verdict == engine.Ack:
		ev.Event = "done"
		if ra, ok := w.cl.(resultAcker); ok && out.Result != "" {
			err = ra.AckResult(ctx, ev.ID, lease, []byte(out.Result))
		} else {
			err = w.cl.Ack(ctx, ev.ID, lease)
		}
	case out.Verdict == engine.Dead:
		ev.Event = "dead"
		err = w.cl.Fail(ctx, ev.ID, lease, out.Error)
	default:
		ev.Event = "retry"
		ev.State, err = w.cl.Nack(ctx, ev.ID, lease, out.NackDelay(), out.Error)
		if ev.State == "dead" { // its attempts are spent
			ev.Event, ev.State = "dead", ""
		}
	}
	return ev, err
}

// workResult is how much stdout --result keeps, 0 without it.
func workResult(c *cli.Context) int {
	if c.Bool("result") {
		return workMaxResult
	}
	return 0
}

// resultAcker is a jobClient whose ack carries a result (the HTTP one).
type resultAcker interface {
	AckResult(ctx context.Context, id, lease string, result []byte) error
}

// release hands a job back to be ready at once.
func (w *worker) release(ctx context.Context, id, lease, why string) error {
	_, err := w.cl.Nack(ctx, id, lease, 0, "released: "+why)
	return err
}

// resolved reports how a job ended once the daemon answered err.
func (w *worker) resolved(ev workEvent, id string, err error) {
	if err != nil {
		w.logf("%s", answerError(id, err))
		return
	}
	w.report(ev)
}

// answerError is the log line for a failed answer to the daemon about job
// id. The daemon's own refusals already name the job; a transport error
// does not.
func answerError(id string, err error) string {
	if apiErr := (*httpapi.APIError)(nil); errors.As(err, &apiErr) {
		return "answer the daemon: " + err.Error()
	}
	return fmt.Sprintf("job %s: answer the daemon: %v", id, err)
}
