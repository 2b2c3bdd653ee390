package engine

import (
	"slices"
	"sync"
	"time"
)

// latencies keeps the most recent samples of a latency for percentiles.
// Safe for concurrent use.
type latencies struct {
	mu   sync.Mutex
	buf  [512]time.Duration // guarded by mu
	n    int                // guarded by mu: samples held
	next int                // guarded by mu
	at   time.Time          // guarded by mu: time of the last sample
}

func (l *latencies) add(d time.Duration, now time.Time) {
	l.mu.Lock()
	l.buf[l.next] = d
	l.next = (l.next + 1) % len(l.buf)
	l.n = min(l.n+1, len(l.buf))
	l.at = now
	l.mu.Unlock()
}

// p99 is the 99th percentile of the held samples, 0 when there are none or
// the newest is older than stale (an idle engine has no symptom).
func (l *latencies) p99(now time.Time, stale time.Duration) time.Duration {
	l.mu.Lock()
	if l.n == 0 || now.Sub(l.at) > stale {
		l.mu.Unlock()
		return 0
	}
	s := slices.Clone(l.buf[:l.n])
	l.mu.Unlock()
	slices.Sort(s)
	return s[(len(s)*99)/100]
}

// Symptoms are the latencies the governor corroborates host pressure with.
type Symptoms struct {
	CommitP99 time.Duration // batch commit (and sync) time
	WaitP99   time.Duration // ready → leased, for critical and high queues only
}

// Symptoms answers the recent p99 latencies (zero when idle for a minute).
func (e *Engine) Symptoms() Symptoms {
	now := time.Now()
	return Symptoms{CommitP99: e.commitLat.p99(now, time.Minute), WaitP99: e.waitLat.p99(now, time.Minute)}
}
