package httpapi

import (
	"cmp"
	"context"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// The status page's charts (GET /v1/stats/history): the last hour of the
// figures an operator watches for trends, kept in memory at a fixed cost.
// One goroutine (Server.Start) samples every historyEvery into a ring of
// historySlots samples; each sample holds at most historyQueues queues (the
// deepest, then by name) and historyUplinks uplinks, so the ring never
// holds more than historySlots × (historyQueues + historyUplinks) points
// whatever the number of queues.
const (
	historySlots      = 360
	historyQueues     = 20
	historyUplinks    = 8
	defaultHistoryInt = 10 * time.Second
)

// queuePoint is one queue's figures in one sample.
type queuePoint struct {
	name    string
	depth   int64   // ready + delayed + leased
	in, out float64 // jobs/s over the last minute
	oldestS float64 // oldest ready job's age
}

// uplinkPoint is one uplink's figures in one sample.
type uplinkPoint struct {
	name    string
	backlog int64
	rate    float64
}

// historySample is one sample.
type historySample struct {
	at        time.Time
	level     job.Level // the engine's governor level
	workers   int       // the global worker limit
	commitP99 float64   // seconds over the interval; NaN when nothing committed
	queues    []queuePoint
	uplinks   []uplinkPoint
}

// history is the ring. The sampling goroutine writes, handlers read, under mu.
type history struct {
	every time.Duration

	mu      sync.Mutex
	ring    [historySlots]historySample // guarded by mu
	n       int                         // guarded by mu: samples taken, the newest at (n-1) % historySlots
	prevHst engine.Histogram            // guarded by mu: the commit histogram at the previous sample
}

// run samples every h.every until ctx ends; the first sample is taken at once.
func (h *history) run(ctx context.Context, s *Server) {
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		h.sample(s, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sample reads the engine, the uplinks and the commit histogram once.
func (h *history) sample(s *Server, now time.Time) {
	st := s.eng.Stats()
	hs := s.eng.Histograms().CommitSeconds
	qs := make([]queuePoint, 0, min(len(st.Queues), historyQueues))
	for _, q := range st.Queues {
		qs = append(qs, queuePoint{name: q.Name, depth: q.Ready + q.Delayed + q.Leased,
			in: q.InRate, out: q.OutRate, oldestS: q.OldestReadyAge.Seconds()})
	}
	slices.SortFunc(qs, func(a, b queuePoint) int { return cmp.Or(cmp.Compare(b.depth, a.depth), cmp.Compare(a.name, b.name)) })
	qs = slices.Clip(qs[:min(len(qs), historyQueues)])
	var ups []uplinkPoint
	if s.uplinks != nil {
		for _, u := range s.uplinks() {
			if len(ups) == historyUplinks {
				break
			}
			ups = append(ups, uplinkPoint{name: u.Name, backlog: u.BacklogJobs, rate: u.Rate})
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ring[h.n%historySlots] = historySample{at: now, level: st.Level, workers: st.Workers,
		commitP99: quantileSince(h.prevHst, hs, 0.99), queues: qs, uplinks: ups}
	h.n++
	h.prevHst = hs
}

// quantileSince answers the q-quantile of what cur counted after prev (two
// snapshots of one cumulative histogram): the upper bound of the bucket
// that holds it (the last bound when it lies beyond), NaN when nothing was
// counted in between.
func quantileSince(prev, cur engine.Histogram, q float64) float64 {
	total := cur.Count - min(prev.Count, cur.Count)
	if total == 0 || len(cur.Bounds) == 0 {
		return math.NaN()
	}
	want := uint64(math.Ceil(q * float64(total)))
	for i, b := range cur.Bounds {
		c := cur.Counts[i]
		if i < len(prev.Counts) {
			c -= min(prev.Counts[i], c)
		}
		if c >= want {
			return b
		}
	}
	return cur.Bounds[len(cur.Bounds)-1]
}

// HistoryDoc is GET /v1/stats/history: the samples oldest first, as
// columns. A queue or uplink series has one value per sample, null where
// it was not among the sample's queues or uplinks.
type HistoryDoc struct {
	IntervalS float64          `json:"interval_s"`
	Times     []int64          `json:"t"` // Unix seconds
	Level     []string         `json:"level"`
	Workers   []int            `json:"workers"`
	CommitP99 []*float64       `json:"commit_p99_ms"`
	Queues    []QueueHistory   `json:"queues"`
	Uplinks   []UplinkHistory  `json:"uplinks"`
	Limits    map[string]int64 `json:"limits"` // samples, queues and uplinks kept
}

// QueueHistory is one queue's series.
type QueueHistory struct {
	Name    string     `json:"name"`
	Depth   []*int64   `json:"depth"`
	In      []*float64 `json:"in_rate"`
	Out     []*float64 `json:"out_rate"`
	OldestS []*float64 `json:"oldest_age_s"`
}

// UplinkHistory is one uplink's series.
type UplinkHistory struct {
	Name    string     `json:"name"`
	Backlog []*int64   `json:"backlog_jobs"`
	Rate    []*float64 `json:"rate"`
}

// doc answers the ring as columns; queues and uplinks in the order of the
// newest sample, then those only older samples hold.
func (h *history) doc() HistoryDoc {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := min(h.n, historySlots)
	d := HistoryDoc{IntervalS: h.every.Seconds(), Times: make([]int64, n), Level: make([]string, n),
		Workers: make([]int, n), CommitP99: make([]*float64, n), Queues: []QueueHistory{}, Uplinks: []UplinkHistory{},
		Limits: map[string]int64{"samples": historySlots, "queues": historyQueues, "uplinks": historyUplinks}}
	qi, ui := map[string]int{}, map[string]int{}
	for k := range n {
		smp := &h.ring[(h.n-1-k)%historySlots] // newest first, for the order of names
		for _, q := range smp.queues {
			if _, ok := qi[q.name]; !ok {
				qi[q.name] = len(d.Queues)
				d.Queues = append(d.Queues, QueueHistory{Name: q.name, Depth: make([]*int64, n),
					In: make([]*float64, n), Out: make([]*float64, n), OldestS: make([]*float64, n)})
			}
		}
		for _, u := range smp.uplinks {
			if _, ok := ui[u.name]; !ok {
				ui[u.name] = len(d.Uplinks)
				d.Uplinks = append(d.Uplinks, UplinkHistory{Name: u.name, Backlog: make([]*int64, n), Rate: make([]*float64, n)})
			}
		}
	}
	for i := range n {
		smp := &h.ring[(h.n-n+i)%historySlots]
		d.Times[i] = smp.at.Unix()
		d.Level[i] = smp.level.String()
		d.Workers[i] = smp.workers
		if !math.IsNaN(smp.commitP99) {
			d.CommitP99[i] = new(smp.commitP99 * 1000)
		}
		for _, q := range smp.queues {
			s := &d.Queues[qi[q.name]]
			s.Depth[i], s.In[i], s.Out[i], s.OldestS[i] = new(q.depth), new(round2(q.in)), new(round2(q.out)), new(math.Round(q.oldestS))
		}
		for _, u := range smp.uplinks {
			s := &d.Uplinks[ui[u.name]]
			s.Backlog[i], s.Rate[i] = new(u.backlog), new(round2(u.rate))
		}
	}
	return d
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// statsHistory serves GET /v1/stats/history.
func (s *Server) statsHistory(w http.ResponseWriter, r *http.Request) (any, error) {
	d := s.history.doc()
	d.Queues = visibleQueues(r, d.Queues, func(q QueueHistory) string { return q.Name })
	return d, nil
}
