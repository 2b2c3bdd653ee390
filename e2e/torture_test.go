package e2e

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edgeq/edgeq/internal/crashfs"
)

var (
	tortureOnce sync.Once
	tortureBin  string
	tortureErr  error
)

// tortureBinary builds edgeq with -tags edgeq_torture once per test run:
// storage/torture.go shrinks Badger's files and hurries the maintenance
// loop, so that seconds of load reach every cut point.
func tortureBinary(t testing.TB) string {
	t.Helper()
	tortureOnce.Do(func() {
		dir, err := os.MkdirTemp("", "edgeq-torture-")
		if err != nil {
			tortureErr = err
			return
		}
		tortureBin = filepath.Join(dir, "edgeq")
		out, err := exec.Command("go", "build", "-tags", "edgeq_torture", "-o", tortureBin, "..").CombinedOutput()
		if err != nil {
			tortureErr = fmt.Errorf("go build -tags edgeq_torture: %v\n%s", err, out)
		}
	})
	if tortureErr != nil {
		t.Fatal(tortureErr)
	}
	return tortureBin
}

// Cut points: what the data directory shows just before a round's cut.
const (
	cutRandom     = "random moment"
	cutWAL        = "memtable rotation (new .mem)"
	cutVlog       = "value-log rotation (new .vlog)"
	cutTable      = "table written (new .sst, flush or compaction)"
	cutFlushed    = "memtable flushed (.mem removed)"
	cutCompacted  = "compaction done (.sst removed)"
	cutGC         = "value-log GC (.vlog removed)"
	cutCheckpoint = "checkpoint renamed into place"
	cutManifest   = "MANIFEST rewritten"
)

// cutTargets are the cut points the rounds aim at, in turn, by the short
// names TORTURE_TARGETS takes.
var cutTargets = []struct{ name, point string }{
	{"random", cutRandom}, {"wal", cutWAL}, {"vlog", cutVlog}, {"table", cutTable}, {"flushed", cutFlushed},
	{"compacted", cutCompacted}, {"gc", cutGC}, {"checkpoint", cutCheckpoint}, {"manifest", cutManifest},
}

// tortureTargets are the cut points of TORTURE_TARGETS (a comma list of
// cutTargets' names, to aim every round at a few, e.g. gc); unset, all.
func tortureTargets(t *testing.T) []string {
	t.Helper()
	var points, names []string
	for _, c := range cutTargets {
		names = append(names, c.name)
	}
	for _, name := range strings.Split(cmp.Or(os.Getenv("TORTURE_TARGETS"), strings.Join(names, ",")), ",") {
		i := slices.Index(names, strings.TrimSpace(name))
		if i < 0 {
			t.Fatalf("TORTURE_TARGETS: unknown cut point %q (want some of %s)", name, strings.Join(names, ", "))
		}
		points = append(points, cutTargets[i].point)
	}
	return points
}

// dirState is a data directory's names and their inodes.
type dirState map[string]uint64

func readDirState(dir string) dirState {
	ents, _ := os.ReadDir(dir) // a failed read is an empty state: the next poll sees everything
	st := make(dirState, len(ents))
	for _, e := range ents {
		if info, err := e.Info(); err == nil {
			st[e.Name()] = info.Sys().(*syscall.Stat_t).Ino
		}
	}
	return st
}

// dirEvents names the cut points that lie between two states.
func dirEvents(prev, cur dirState) []string {
	var ev []string
	add := func(e string) {
		if !slices.Contains(ev, e) {
			ev = append(ev, e)
		}
	}
	for name, ino := range cur {
		old, had := prev[name]
		switch {
		case !had && strings.HasSuffix(name, ".mem"):
			add(cutWAL)
		case !had && strings.HasSuffix(name, ".vlog"):
			add(cutVlog)
		case !had && strings.HasSuffix(name, ".sst"):
			add(cutTable)
		case had && old != ino && name == "edgeq.checkpoint":
			add(cutCheckpoint)
		case had && old != ino && name == "MANIFEST":
			add(cutManifest)
		}
	}
	for name := range prev {
		if _, ok := cur[name]; ok {
			continue
		}
		switch {
		case strings.HasSuffix(name, ".mem"):
			add(cutFlushed)
		case strings.HasSuffix(name, ".sst"):
			add(cutCompacted)
		case strings.HasSuffix(name, ".vlog"):
			add(cutGC)
		}
	}
	return ev
}

// waitCut runs until the round's target cut point shows in dir after a
// random warm-up (or, for cutRandom, until a random moment), or until limit
// passes. It answers the cut point hit ("" at the limit) and counts in seen
// every cut point the directory went through.
func waitCut(dir, target string, rng *rand.Rand, limit time.Duration, seen map[string]int) string {
	start := time.Now()
	warm := time.Duration(200+rng.IntN(800)) * time.Millisecond
	if target == cutRandom {
		warm = time.Duration(300+rng.IntN(2500)) * time.Millisecond
	}
	prev := readDirState(dir)
	for time.Since(start) < limit {
		time.Sleep(2 * time.Millisecond) // polling the directory, not waiting for a goroutine
		cur := readDirState(dir)
		ev := dirEvents(prev, cur)
		prev = cur
		for _, e := range ev {
			seen[e]++
		}
		if time.Since(start) < warm {
			continue
		}
		if target == cutRandom || slices.Contains(ev, target) {
			return target
		}
	}
	return ""
}

// pubackLedger is a mochi hook that records which messages a client (edgeq)
// PUBACKed: edgeq answers PUBACK only once the job is committed (and, with
// sync always, fsynced), so every one of them must survive a power cut.
type pubackLedger struct {
	mochi.HookBase
	client string

	mu       sync.Mutex
	inflight map[uint16]string // guarded by mu: packet id → msg_id, sent to client and not yet acked
	acked    map[string]bool   // guarded by mu: msg_ids client PUBACKed
}

func (h *pubackLedger) ID() string { return "puback-ledger" }

func (h *pubackLedger) Provides(b byte) bool {
	return b == mochi.OnQosPublish || b == mochi.OnQosComplete
}

func (h *pubackLedger) OnQosPublish(cl *mochi.Client, pk packets.Packet, _ int64, _ int) {
	if cl.ID != h.client || pk.FixedHeader.Type != packets.Publish {
		return
	}
	var m struct {
		MsgID string `json:"msg_id"`
	}
	if json.Unmarshal(pk.Payload, &m) != nil || m.MsgID == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.inflight[pk.PacketID] = m.MsgID
}

func (h *pubackLedger) OnQosComplete(cl *mochi.Client, pk packets.Packet) {
	if cl.ID != h.client {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if id, ok := h.inflight[pk.PacketID]; ok {
		delete(h.inflight, pk.PacketID)
		h.acked[id] = true
	}
}

func (h *pubackLedger) ackedIDs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]string, 0, len(h.acked))
	for id := range h.acked {
		ids = append(ids, id)
	}
	return ids
}

// startMochiLedger runs an in-process broker on a free loopback port whose
// hook records what client PUBACKed.
func startMochiLedger(t *testing.T, client string) (string, *pubackLedger) {
	t.Helper()
	addr := freePort(t)
	h := &pubackLedger{client: client, inflight: map[uint16]string{}, acked: map[string]bool{}}
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	for _, hook := range []mochi.Hook{new(auth.AllowHook), h} {
		if err := srv.AddHook(hook, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "torture", Address: addr})); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return addr, h
}

// publish streams QoS 1 messages with unique msg_id into the broker, about
// 500 a second, until ctx ends.
func publish(ctx context.Context, t *testing.T, broker string, round int) {
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).
		SetClientID(fmt.Sprintf("torture-pub-%d", round)).SetCleanSession(true))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Errorf("publisher connect: %v", tok.Error())
		return
	}
	defer pub.Disconnect(0)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ctx.Err() == nil; i++ {
		payload := fmt.Sprintf(`{"msg_id":"r%d-m%d","v":%d}`, round, i, i)
		tok := pub.Publish(fmt.Sprintf("sensors/s%d/reading", i%5), 1, false, payload)
		select {
		case <-tok.Done():
		case <-ctx.Done():
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// torture is the state the rounds share.
type torture struct {
	t       *testing.T
	client  *http.Client
	l       *ledger
	mq      *pubackLedger
	mqSeen  map[string]bool // msg_ids delivered from telemetry so far
	checked int             // jobs checked after cuts
	dropped int             // restarts whose WAL replay dropped writes whose values a cut lost
}

// checkRound checks a daemon just restarted on what a cut left: no "store
// came back short", stats that match a scan of the queue, every job
// answered 201 or PUBACKed present (or acked), none acked with 200 delivered
// again. The drain leaves the queues empty.
func (tt *torture) checkRound(d *daemon, round int) {
	t := tt.t
	t.Helper()
	if strings.Contains(d.log.String(), "store came back short") {
		t.Errorf("round %d: the store came back short after the cut:\n%s", round, d.log)
	}
	if strings.Contains(d.log.String(), "WAL replay stops at a value past the end") {
		tt.dropped++
	}
	var st struct {
		StoreShort bool `json:"store_short"`
	}
	if code, err := call(context.Background(), tt.client, "GET", d.base+"/v1/stats", nil, &st); err != nil || code != 200 {
		t.Fatalf("round %d: stats: %d %v", round, code, err)
	}
	if st.StoreShort {
		t.Errorf("round %d: stats say store_short", round)
	}
	var q struct{ Ready, Delayed, Leased int }
	code, err := call(context.Background(), tt.client, "GET", d.base+"/v1/queues/cut", nil, &q)
	if err != nil || (code != 200 && code != 404) {
		t.Fatalf("round %d: queue stats: %d %v", round, code, err)
	}
	n := tt.l.check(t, tt.client, d, "cut", fmt.Sprintf("the cut of round %d", round-1))
	if want := q.Ready + q.Delayed + q.Leased; n != want {
		t.Errorf("round %d: stats said %d ready, %d delayed, %d leased; the drain delivered %d", round, q.Ready, q.Delayed, q.Leased, n)
	}
	tt.checked += n
	tt.drainTelemetry(d, round)
}

// drainTelemetry drains the MQTT queue until every message edgeq PUBACKed
// has been delivered (they are in the store: a redelivery by the broker may
// still trickle in, which the key makes a duplicate).
func (tt *torture) drainTelemetry(d *daemon, round int) {
	t := tt.t
	t.Helper()
	want := tt.mq.ackedIDs()
	missing := func() []string {
		var m []string
		for _, id := range want {
			if !tt.mqSeen[id] {
				m = append(m, id)
			}
		}
		return m
	}
	ctx := context.Background()
	for tries := 0; tries < 100; tries++ {
		var lr struct{ Jobs []apiJob }
		code, err := call(ctx, tt.client, "POST", d.base+"/v1/queues/telemetry/lease?max=100", nil, &lr)
		if err != nil || code != 200 {
			t.Fatalf("round %d: lease telemetry: %d %v", round, code, err)
		}
		for _, j := range lr.Jobs {
			var p struct {
				MsgID string `json:"msg_id"`
			}
			if err := json.Unmarshal(j.Payload, &p); err != nil || p.MsgID == "" {
				t.Fatalf("round %d: telemetry payload %s: %v", round, j.Payload, err)
			}
			if tt.mqSeen[p.MsgID] {
				t.Errorf("round %d: msg_id %s delivered again after its job was acked", round, p.MsgID)
			}
			tt.mqSeen[p.MsgID] = true
			if code, err := call(ctx, tt.client, "POST", fmt.Sprintf("%s/v1/jobs/%s/ack?lease=%s", d.base, j.ID, j.Lease.ID), nil, nil); err != nil || code != 200 {
				t.Fatalf("round %d: ack telemetry: %d %v", round, code, err)
			}
		}
		if len(lr.Jobs) == 0 && len(missing()) == 0 {
			break
		}
		if len(lr.Jobs) == 0 {
			time.Sleep(20 * time.Millisecond) // nothing to lease yet: the check below bounds the wait
		}
	}
	tt.checked += len(want)
	if m := missing(); len(m) > 0 {
		t.Errorf("round %d: %d messages PUBACKed by edgeq are gone after the cut, e.g. %v", round, len(m), m[:min(len(m), 5)])
	}
}

// TestPowerCutTorture is issue 18's torture test: the real binary (its
// torture build, with tiny Badger files) on crashfs, with 16 HTTP producers
// (a quarter of their payloads over the value threshold), an acking pull
// worker, a queue run by an exec handler and MQTT ingest at QoS 1 at once.
// Each round cuts the power at a random moment or right after a chosen event
// in the data directory (memtable rotation, value-log rotation, a table
// written, a flush, a compaction, the value-log GC, the checkpoint rename, a
// MANIFEST rewrite), restarts on what survived and checks: no "store came
// back short", stats that match a scan, every job answered 201 or PUBACKed
// present (or acked), none acked with 200 delivered again.
// It runs only when TORTURE_ROUNDS sets the rounds: make torture (ROUNDS,
// default 30). TORTURE_MODES picks crashfs's modes
// (tortureModes); TORTURE_SEED replays the random choices (timing still
// differs).
func TestPowerCutTorture(t *testing.T) {
	if os.Getenv("TORTURE_ROUNDS") == "" {
		t.Skip("runs only with TORTURE_ROUNDS set: make torture (long), .ci/run (short)")
	}
	rounds := envInt(t, "TORTURE_ROUNDS", 0)
	modes := tortureModes(t)
	targets := tortureTargets(t)
	seed := uint64(envInt(t, "TORTURE_SEED", int(time.Now().UnixNano()%1e9)))
	t.Logf("TORTURE_ROUNDS=%d TORTURE_SEED=%d TORTURE_MODES=%s TORTURE_TARGETS=%s", rounds, seed, os.Getenv("TORTURE_MODES"), os.Getenv("TORTURE_TARGETS"))
	rng := rand.New(rand.NewPCG(seed, seed))
	bin := tortureBinary(t)

	backing := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(backing, 0o755); err != nil {
		t.Fatal(err)
	}
	const clientID = "edgeq-torture"
	brokerAddr, mq := startMochiLedger(t, clientID)
	broker := "tcp://" + brokerAddr
	conf := filepath.Join(t.TempDir(), "edgeq.yaml")
	err := os.WriteFile(conf, []byte("mqtt:\n  broker: "+broker+"\n  client_id: "+clientID+"\n  routes:\n"+
		"    - {filter: 'sensors/+/reading', queue: telemetry, key_field: msg_id}\n"+
		"queues:\n  handled:\n    handler: {type: exec, command: [/bin/true], timeout: 5s}\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	tt := &torture{
		t:      t,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second},
		l:      newLedger(),
		mq:     mq,
		mqSeen: map[string]bool{},
	}
	tt.l.pad = 8 << 10
	seen := map[string]int{}
	hit := map[string]int{}
	var lost crashfs.CutStats
	for round := 0; round <= rounds; round++ {
		roundStart := time.Now()
		mode := modes[rng.IntN(len(modes))]
		fsys := crashfs.MountT(t, backing, crashfs.Options{Mode: mode, Seed: rng.Uint64()})
		d := startDaemonBin(t, bin, fsys.Dir(), "--config", conf)
		if round > 0 {
			tt.checkRound(d, round)
		}
		if round == rounds || t.Failed() {
			if err := d.term(); err != nil {
				t.Errorf("clean stop: %v", err)
			}
			break
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		tt.l.run(ctx, &wg, tt.client, d.base, "cut", round, 14)
		for p := range 2 {
			wg.Go(func() {
				for n := 0; ctx.Err() == nil; n++ {
					url := d.base + "/v1/queues/handled/jobs"
					if _, err := call(ctx, tt.client, "POST", url, []byte(fmt.Sprintf("h%d-p%d-%d", round, p, n)), nil); err != nil {
						return
					}
				}
			})
		}
		wg.Go(func() { publish(ctx, t, broker, round) })
		target := targets[round%len(targets)]
		got := waitCut(backing, target, rng, 6*time.Second, seen)
		d.kill()
		cancel()
		wg.Wait()
		if err := fsys.Cut(); err != nil {
			t.Fatalf("round %d: power cut: %v", round, err)
		}
		st := fsys.LastCut()
		lost.Writes += st.Writes
		lost.Entries += st.Entries
		if got == "" {
			got = "limit (" + target + " not seen)"
		}
		hit[got]++
		accepted, acked := tt.l.counts()
		t.Logf("round %d (%.1fs): cut (%v) at %s: undid %d writes, %d entries; %d accepted, %d acked, %d PUBACKed so far",
			round, time.Since(roundStart).Seconds(), modeName(mode), got, st.Writes, st.Entries, accepted, acked, len(mq.ackedIDs()))
	}
	t.Logf("cut points hit: %v", hit)
	t.Logf("events seen in the data directory: %v", seen)
	t.Logf("jobs checked after cuts: %d; the cuts undid %d writes and %d directory entries", tt.checked, lost.Writes, lost.Entries)
	t.Logf("restarts whose WAL replay stopped at a value the cut lost (third_party/badger): %d", tt.dropped)
	if lost.Writes == 0 {
		t.Errorf("no cut in %d rounds found an unsynced write: the cuts tested nothing", rounds)
	}
	if accepted, _ := tt.l.counts(); accepted < 100*rounds {
		t.Errorf("only %d jobs accepted in %d rounds: the test did not exercise anything", accepted, rounds)
	}
	if len(mq.ackedIDs()) == 0 {
		t.Errorf("edgeq PUBACKed no message in %d rounds", rounds)
	}
}

var modeNames = []string{"drop", "tear", "reorder"} // by crashfs.Mode

func modeName(m crashfs.Mode) string { return modeNames[m] }

// tortureModes reads TORTURE_MODES, a comma-separated list of crashfs modes
// (drop, tear, reorder); unset, all three.
func tortureModes(t *testing.T) []crashfs.Mode {
	t.Helper()
	var modes []crashfs.Mode
	for _, name := range strings.Split(cmp.Or(os.Getenv("TORTURE_MODES"), "drop,tear,reorder"), ",") {
		i := slices.Index(modeNames, strings.TrimSpace(name))
		if i < 0 {
			t.Fatalf("TORTURE_MODES: unknown mode %q (want drop, tear or reorder)", name)
		}
		modes = append(modes, crashfs.Mode(i))
	}
	return modes
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a whole number", name, v)
	}
	return n
}

var (
	syncBucket = regexp.MustCompile(`(?m)^edgeq_sync_seconds_bucket\{le="([^"]+)"\} (\d+)$`)
	syncCount  = regexp.MustCompile(`(?m)^edgeq_sync_seconds_count (\d+)$`)
)

// lossWindow is how long before a power cut a job answered "durable":
// false may have been answered and still be lost under storage.sync:
// interval: the interval, then the sync of the job's writes, which may
// wait for the sync running when it was due. A sync takes a few
// milliseconds on an idle host and far longer on a loaded one, so the
// window counts twice the slowest sync the daemon reports (the upper bound
// of the highest bucket of edgeq_sync_seconds it used) plus a second
// interval for the committer's wake-up, where it was twice the interval.
func lossWindow(t *testing.T, c *http.Client, base string, interval time.Duration) time.Duration {
	t.Helper()
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	count := syncCount.FindSubmatch(b)
	if count == nil {
		t.Fatalf("metrics lack edgeq_sync_seconds_count:\n%s", b)
	}
	// The buckets are cumulative: the slowest sync took at most the
	// smallest bound whose bucket holds them all; past the last finite
	// bound, say twice it.
	var slowest float64
	for _, m := range syncBucket.FindAllSubmatch(b, -1) {
		le, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			t.Fatalf("metrics: %s: %v", m[0], err)
		}
		if math.IsInf(le, 1) {
			slowest *= 2
			break
		}
		if slowest = le; string(m[2]) == string(count[1]) {
			break
		}
	}
	return 2*interval + 2*time.Duration(slowest*float64(time.Second))
}

// TestPowerCutSyncInterval is storage.sync: interval under power cuts: a
// job answered "durable": false may be lost, but only one answered within
// about sync_interval of the cut (the window is sync_interval plus the
// syncs that make it durable: lossWindow); a job answered "durable": true
// never is.
func TestPowerCutSyncInterval(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary on a FUSE mount; skipped in -short")
	}
	const interval = 200 * time.Millisecond
	const rounds, producers = 3, 8
	backing := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(backing, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "edgeq.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("storage:\n  sync: interval\n  sync_interval: %s\n", interval)), 0o600); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		durable bool
		at      time.Time
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var lostTotal, notDurable int
	var worst time.Duration
	for round := range rounds {
		fsys := crashfs.MountT(t, backing, crashfs.Options{})
		d := startDaemon(t, fsys.Dir(), "--config", conf)
		var mu sync.Mutex
		answered := map[string]answer{} // guarded by mu
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for p := range producers {
			wg.Go(func() {
				for n := 0; ctx.Err() == nil; n++ {
					var r struct {
						ID      string `json:"id"`
						Durable bool   `json:"durable"`
					}
					code, err := call(ctx, client, "POST", d.base+"/v1/queues/iv/jobs", []byte(fmt.Sprintf("r%d-p%d-%d", round, p, n)), &r)
					if err != nil {
						return
					}
					if code == 201 {
						mu.Lock()
						answered[r.ID] = answer{r.Durable, time.Now()}
						mu.Unlock()
					}
				}
			})
		}
		time.Sleep(time.Duration(500+rng.IntN(1000)) * time.Millisecond) // let the stream run; the cut lands mid-stream
		window := lossWindow(t, client, d.base, interval)
		killed := time.Now()
		d.kill()
		cancel()
		wg.Wait()
		if err := fsys.Cut(); err != nil {
			t.Fatalf("round %d: power cut: %v", round, err)
		}

		d = startDaemon(t, backing, "--config", conf)
		delivered := map[string]bool{}
		for range 10000 {
			var lr struct{ Jobs []apiJob }
			code, err := call(context.Background(), client, "POST", d.base+"/v1/queues/iv/lease?max=100", nil, &lr)
			if err != nil || code != 200 {
				t.Fatalf("round %d: lease: %d %v", round, code, err)
			}
			if len(lr.Jobs) == 0 {
				break
			}
			for _, j := range lr.Jobs {
				delivered[j.ID] = true
				if code, err := call(context.Background(), client, "POST", fmt.Sprintf("%s/v1/jobs/%s/ack?lease=%s", d.base, j.ID, j.Lease.ID), nil, nil); err != nil || code != 200 {
					t.Fatalf("round %d: ack: %d %v", round, code, err)
				}
			}
		}
		if err := d.term(); err != nil {
			t.Errorf("clean stop: %v", err)
		}
		lost := 0
		for id, a := range answered {
			if !a.durable {
				notDurable++
			}
			if delivered[id] {
				continue
			}
			lost++
			age := killed.Sub(a.at)
			worst = max(worst, age)
			switch {
			case a.durable:
				t.Errorf("round %d: job %s was answered durable and is gone after the cut", round, id)
			case age > window:
				t.Errorf("round %d: job %s was answered %v before the cut and is gone: more than sync_interval (%v) and two syncs (%v in all)", round, id, age, interval, window)
			}
		}
		lostTotal += lost
		t.Logf("round %d: %d answered, %d lost at the cut (the cut undid %d writes; loss window %v)", round, len(answered), lost, fsys.LastCut().Writes, window)
	}
	t.Logf("%d jobs lost in %d cuts, the oldest answered %v before its cut; %d answers said durable: false", lostTotal, rounds, worst, notDurable)
	if notDurable == 0 {
		t.Error(`no answer said "durable": false: the daemon did not run with sync: interval`)
	}
}
