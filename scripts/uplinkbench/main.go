// Command uplinkbench measures issue 19's uplink figures on this machine
// (docs/BENCHMARKS.md, "Uplinks"); each round runs its baseline beside it:
//
//   - drain: jobs/s from a backlog of -n jobs in a Badger store into a
//     JetStream stream (file storage, in-process server on 127.0.0.1) with
//     batches of 100 and with max_jobs 1, against a raw nats.go
//     async-publish loop and a synchronous one into the same stream, and
//     against the same drain with a handler that acks at once (the
//     engine's own ceiling on this store);
//   - latency: a critical job enqueued every 100ms during the batched
//     drain, from enqueue to its arrival at a core NATS subscriber;
//   - wire: bytes on the wire per 256 B JSON telemetry job over an http
//     uplink in batches of 100, with no compression, gzip and zstd.
//
// It prints one line per round and the medians. Not part of make test.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/storage"
	"github.com/edgeq/edgeq/transport/uplink"
)

func main() {
	n := flag.Int("n", 100000, "backlog jobs per drain")
	rounds := flag.Int("rounds", 3, "rounds; medians are printed")
	wireJobs := flag.Int("wire-jobs", 10000, "jobs per wire measurement")
	flag.IntVar(&concurrency, "concurrency", 200, "the backlog queue's concurrency (jobs in flight, so batches in flight × max_jobs)")
	syncMode := flag.String("sync", "always", "the store's sync: always (each commit fsynced) or interval (1s)")
	flag.Parse()
	ctx := context.Background()
	mode := engine.SyncAlways
	if *syncMode == "interval" {
		mode = engine.SyncInterval
	}
	var wall, cpu [5][]float64 // batch 100, max_jobs 1, no-op, async, sync: jobs/s and µs of CPU a job
	var wire [3][]float64
	var lat []time.Duration
	var latMax time.Duration
	names := [5]string{"batch 100", "max_jobs 1", "no-op handler", "nats.go async", "nats.go sync"}
	for r := range *rounds {
		var m [5]measured
		var l []time.Duration
		m[0], l = drain(ctx, *n, 100, true, mode)
		m[1], _ = drain(ctx, *n, 1, false, mode)
		m[2], _ = drain(ctx, *n, 0, false, mode)
		m[3] = rawPublish(ctx, *n, true)
		m[4] = rawPublish(ctx, *n, false)
		fmt.Printf("round %d:", r+1)
		for i := range m {
			wall[i], cpu[i] = append(wall[i], m[i].rate), append(cpu[i], m[i].cpu)
			fmt.Printf(" %s %.0f/s %.1fµs;", names[i], m[i].rate, m[i].cpu)
		}
		slices.Sort(l)
		lat = append(lat, l[len(l)/2])
		latMax = max(latMax, l[len(l)-1])
		fmt.Printf(" batch/async %.2f (CPU %.2f), batch/sync %.2f (CPU %.2f); critical p50 %v max %v\n",
			m[0].rate/m[3].rate, m[3].cpu/m[0].cpu, m[0].rate/m[4].rate, m[4].cpu/m[0].cpu,
			l[len(l)/2].Round(time.Millisecond), l[len(l)-1].Round(time.Millisecond))
		for i, enc := range []string{"", "gzip", "zstd"} {
			wire[i] = append(wire[i], wireBytes(ctx, *wireJobs, enc, uint64(r)))
		}
		fmt.Printf("round %d wire bytes/job: none %.1f, gzip %.1f, zstd %.1f\n", r+1, wire[0][r], wire[1][r], wire[2][r])
	}
	fmt.Print("median drain:")
	for i := range names {
		fmt.Printf(" %s %.0f/s %.1fµs of CPU a job;", names[i], median(wall[i]), median(cpu[i]))
	}
	fmt.Println()
	ratio := func(a, b []float64) float64 {
		rs := make([]float64, len(a))
		for i := range a {
			rs[i] = a[i] / b[i]
		}
		return median(rs)
	}
	fmt.Printf("median ratios (each taken within a round): batch/async %.2f, batch/sync %.2f, max_jobs 1/async %.2f, batch/no-op %.2f; CPU a job async/batch %.2f, sync/batch %.2f, no-op/batch %.2f\n",
		ratio(wall[0], wall[3]), ratio(wall[0], wall[4]), ratio(wall[1], wall[3]), ratio(wall[0], wall[2]),
		ratio(cpu[3], cpu[0]), ratio(cpu[4], cpu[0]), ratio(cpu[2], cpu[0]))
	slices.Sort(lat)
	fmt.Printf("critical latency during the drain: median of round medians %v, max %v\n", lat[len(lat)/2].Round(time.Millisecond), latMax.Round(time.Millisecond))
	fmt.Printf("median wire bytes/job (256 B JSON, batches of 100): none %.1f, gzip %.1f, zstd %.1f\n", median(wire[0]), median(wire[1]), median(wire[2]))
}

// measured is one run's jobs (or messages) a second and the process's CPU
// time a job, in µs (user and system, every goroutine: edgeq's engine and
// uplink, nats.go and the in-process server alike).
type measured struct{ rate, cpu float64 }

// cpuTime answers the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	must(syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// since answers the rate and CPU a job of n jobs timed from start and c0.
func since(n int, start time.Time, c0 time.Duration) measured {
	return measured{rate: float64(n) / time.Since(start).Seconds(), cpu: float64((cpuTime() - c0).Microseconds()) / float64(n)}
}

// concurrency is the backlog queue's concurrency (-concurrency).
var concurrency int

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

// jetStream runs a server with stream EDGE on edge.> (file storage, 10m
// dedupe window) and answers it with its URL.
func jetStream() (*server.Server, string, func()) {
	dir, err := os.MkdirTemp("", "uplinkbench-js-")
	must(err)
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	must(err)
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		log.Fatal("nats server not ready")
	}
	nc, err := nats.Connect(s.ClientURL())
	must(err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	must(err)
	_, err = js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "EDGE", Subjects: []string{"edge.>"},
		Duplicates: 10 * time.Minute, Storage: jetstream.FileStorage})
	must(err)
	return s, s.ClientURL(), func() { s.Shutdown(); s.WaitForShutdown(); os.RemoveAll(dir) }
}

// telemetry answers a 256-byte JSON reading: varying figures and a random
// 32-digit trace id, padded with random hex digits, so that compression
// meets what a real reading gives it.
func telemetry(r *rand.Rand, i int) []byte {
	b := fmt.Appendf(nil, `{"site":"site-0042","sensor":"th-%03d","ts":%d,"temp_c":%.2f,"humidity":%.1f,"pressure_hpa":%.1f,"battery_v":%.3f,"rssi":%d,"seq":%d,"fw":"2.4.1","status":"ok","trace":"`,
		r.IntN(64), 1764800000000+int64(i)*250, 15+r.Float64()*15, 30+r.Float64()*40, 990+r.Float64()*30, 3+r.Float64()*0.6, -90+r.IntN(40), i)
	const hex = "0123456789abcdef"
	for len(b) < 254 {
		b = append(b, hex[r.IntN(16)])
	}
	return append(b[:254], '"', '}')
}

// drain fills a paused Badger-backed queue with n jobs, then resumes it
// through a nats uplink of batch maxJobs (0: a handler that acks at once,
// the engine's own ceiling) and answers jobs/s until the
// queue is empty; with critical, it also enqueues a critical job every
// 100ms meanwhile and answers their latencies to a core subscriber.
func drain(ctx context.Context, n, maxJobs int, critical bool, mode engine.SyncMode) (measured, []time.Duration) {
	_, url, stop := jetStream()
	defer stop()
	dir, err := os.MkdirTemp("", "uplinkbench-store-")
	must(err)
	defer os.RemoveAll(dir)
	store, err := storage.Open(storage.Config{Dir: dir})
	must(err)
	u, err := uplink.New(uplink.Config{Name: "cloud", Type: "nats", URL: url, Stream: "EDGE", Subject: "edge.{queue}",
		Batch: uplink.Batch{MaxJobs: max(maxJobs, 1), Linger: 5 * time.Millisecond}})
	must(err)
	must(u.Start(ctx))
	defer u.Stop()
	handler := u.Handler(job.ClassNormal)
	if maxJobs == 0 {
		handler = engine.HandlerFunc(func(context.Context, *job.Job) engine.Outcome { return engine.Outcome{Verdict: engine.Ack} })
	}
	e, err := engine.New(engine.Config{
		Workers: concurrency + 56,
		Sync:    mode,
		Queues: map[string]engine.QueueConfig{
			"backlog": {Class: job.ClassNormal, Concurrency: concurrency, Handler: handler},
			"alarms":  {Class: job.ClassCritical, Concurrency: 4, Handler: u.Handler(job.ClassCritical)},
		},
	}, store)
	must(err)
	must(e.Start(ctx))
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		e.Stop(sctx)
		store.Close()
	}()
	must(e.Pause(ctx, "backlog"))
	fillBacklog(ctx, e, n)
	var a *alarms
	if critical {
		a = watchAlarms(url)
		defer a.nc.Close()
	}
	start, c0 := time.Now(), cpuTime()
	must(e.Resume(ctx, "backlog"))
	if a != nil {
		a.wg.Go(func() { a.enqueue(ctx, e) })
	}
	for {
		st, err := e.QueueStats("backlog")
		must(err)
		if st.Ready+st.Leased+st.Delayed == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	m := since(n, start, c0)
	if st, _ := e.QueueStats("backlog"); st.Dead != 0 {
		log.Fatalf("%d jobs dead", st.Dead)
	}
	if st := u.Stats(); st.Batches > 0 && os.Getenv("UPLINKBENCH_VERBOSE") != "" {
		fmt.Fprintf(os.Stderr, "max_jobs %d: %d batches, %.1f jobs each\n", maxJobs, st.Batches, float64(st.JobsSent)/float64(st.Batches))
	}
	if a == nil {
		return m, nil
	}
	return m, a.stop()
}

// fillBacklog enqueues n telemetry jobs into queue backlog of e.
func fillBacklog(ctx context.Context, e *engine.Engine, n int) {
	r := rand.New(rand.NewPCG(1, 2))
	for left := n; left > 0; {
		jobs := make([]job.New, min(left, 1000))
		for i := range jobs {
			jobs[i] = job.New{Payload: telemetry(r, left-i), ContentType: "application/json"}
		}
		_, err := e.EnqueueBatch(ctx, "backlog", jobs)
		must(err)
		left -= len(jobs)
	}
}

// alarms enqueues a critical job every 100ms and times each from its
// enqueue to its arrival at a core subscriber of its subject.
type alarms struct {
	nc   *nats.Conn
	wg   sync.WaitGroup
	done atomic.Bool
	mu   sync.Mutex
	sent map[string]time.Time // guarded by mu
	lats []time.Duration      // guarded by mu
}

func watchAlarms(url string) *alarms {
	a := &alarms{sent: map[string]time.Time{}}
	var err error
	a.nc, err = nats.Connect(url)
	must(err)
	_, err = a.nc.Subscribe("edge.alarms", func(m *nats.Msg) {
		a.mu.Lock()
		defer a.mu.Unlock()
		if t, ok := a.sent[m.Header.Get(uplink.HeaderMsgID)]; ok {
			a.lats = append(a.lats, time.Since(t))
		}
	})
	must(err)
	must(a.nc.Flush())
	return a
}

func (a *alarms) enqueue(ctx context.Context, e *engine.Engine) {
	for !a.done.Load() {
		time.Sleep(100 * time.Millisecond)
		a.mu.Lock()
		res, err := e.Enqueue(ctx, job.New{Queue: "alarms", Payload: []byte(`{"alarm":"door"}`), ContentType: "application/json"})
		if err == nil {
			a.sent[res.ID.String()] = time.Now()
		}
		a.mu.Unlock()
	}
}

// stop ends the alarms, waits for the last one's arrival and answers the
// latencies.
func (a *alarms) stop() []time.Duration {
	a.done.Store(true)
	a.wg.Wait()
	time.Sleep(500 * time.Millisecond)
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.lats)
}

// rawPublish publishes n telemetry messages with Nats-Msg-Id into the
// stream with nats.go alone, asynchronously (4000 in flight) or one at a
// time, and answers msg/s once all are acknowledged.
func rawPublish(ctx context.Context, n int, async bool) measured {
	_, url, stop := jetStream()
	defer stop()
	nc, err := nats.Connect(url)
	must(err)
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4000))
	must(err)
	r := rand.New(rand.NewPCG(1, 2))
	msgs := make([]*nats.Msg, n)
	for i := range msgs {
		m := nats.NewMsg("edge.backlog")
		m.Data = telemetry(r, i)
		m.Header.Set(uplink.HeaderMsgID, fmt.Sprint(i+1))
		m.Header.Set(uplink.HeaderQueue, "backlog")
		msgs[i] = m
	}
	start, c0 := time.Now(), cpuTime()
	for _, m := range msgs {
		if async {
			_, err = js.PublishMsgAsync(m, jetstream.WithStallWait(10*time.Second))
		} else {
			_, err = js.PublishMsg(ctx, m)
		}
		must(err)
	}
	if async {
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			log.Fatal("async publishes not acknowledged")
		}
	}
	return since(n, start, c0)
}

// countConn counts the bytes a server connection reads.
type countConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countConn) Read(p []byte) (int, error) {
	k, err := c.Conn.Read(p)
	c.n.Add(int64(k))
	return k, err
}

type countListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countConn{c, l.n}, nil
}

// wireBytes sends n telemetry jobs through an http uplink in batches of
// 100 with compression enc and answers the bytes the collector read per
// job: request lines, headers and bodies.
func wireBytes(ctx context.Context, n int, enc string, seed uint64) float64 {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	var read atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 32<<10)
		for {
			if _, err := r.Body.Read(buf); err != nil {
				break
			}
		}
	})}
	go srv.Serve(countListener{l, &read})
	defer srv.Close()
	u, err := uplink.New(uplink.Config{Name: "collector", Type: "http", URL: "http://" + l.Addr().String() + "/ingest", Compress: enc,
		Batch: uplink.Batch{MaxJobs: 100, Linger: time.Second}})
	must(err)
	must(u.Start(ctx))
	defer u.Stop()
	h := u.Handler(job.ClassNormal)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := 0; i < n; i += 100 {
		var wg sync.WaitGroup
		for k := range 100 {
			j := &job.Job{ID: job.ID(i + k + 1), Queue: "telemetry", ContentType: "application/json", Payload: telemetry(r, i+k)}
			wg.Go(func() {
				if o := h.Handle(ctx, j); o.Verdict != engine.Ack {
					log.Fatalf("job %d: %+v", j.ID, o)
				}
			})
		}
		wg.Wait()
	}
	if st := u.Stats(); st.Batches != uint64(n/100) {
		log.Fatalf("%d batches for %d jobs, want batches of 100", st.Batches, n)
	}
	return float64(read.Load()) / float64(n)
}
