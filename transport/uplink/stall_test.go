package uplink

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// stallProxy forwards TCP connections to a server; stall makes the
// connections open at that moment swallow what they carry, as a link that
// went silent without closing does. Connections made later work.
type stallProxy struct {
	l      net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []*proxied // guarded by mu
}

type proxied struct {
	mu      sync.Mutex
	stalled bool // guarded by mu
	a, b    net.Conn
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{l: l, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		l.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.a.Close()
			c.b.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *stallProxy) addr() string { return "nats://" + p.l.Addr().String() }

func (p *stallProxy) accept() {
	for {
		a, err := p.l.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", p.target)
		if err != nil {
			a.Close()
			continue
		}
		c := &proxied{a: a, b: b}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		p.wg.Go(func() { c.pipe(b, a) })
		p.wg.Go(func() { c.pipe(a, b) })
	}
}

// pipe copies from src to dst until either closes, dropping what it reads
// once stalled.
func (c *proxied) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			c.mu.Lock()
			stalled := c.stalled
			c.mu.Unlock()
			if !stalled {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *stallProxy) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.mu.Lock()
		c.stalled = true
		c.mu.Unlock()
	}
}

// TestStalledConnectionRedialled: the link goes silent without closing;
// the batch waiting for its acknowledgement gives up after the timeout,
// costs no attempt, and the connection is torn down and redialled, so the
// retry goes through.
func TestStalledConnectionRedialled(t *testing.T) {
	s := jsServer(t, 0, t.TempDir())
	stream := createStream(t, s.ClientURL(), 1, 0)
	p := newStallProxy(t, s.Addr().String())
	u := startUplink(t, Config{URL: p.addr(), Timeout: 500 * time.Millisecond, Batch: Batch{Linger: time.Millisecond}})
	h := u.Handler(job.ClassNormal)
	if o := h.Handle(t.Context(), newJob("telemetry", []byte("a"))); o.Verdict != engine.Ack {
		t.Fatalf("before the stall: %+v, want ack", o)
	}
	p.stall()
	start := time.Now()
	o := h.Handle(t.Context(), newJob("telemetry", []byte("b")))
	if o.Verdict != engine.Retry || !o.Unreached || !o.TargetFailed || time.Since(start) > 5*time.Second {
		t.Fatalf("stalled: %+v after %v, want an unreached retry after the 500ms timeout", o, time.Since(start))
	}
	deliver(t, h, newJob("telemetry", []byte("c")))
	if st := u.Stats(); st.Reconnects == 0 {
		t.Errorf("stats %+v: want a reconnect", st)
	}
	if msgs, _ := streamIDs(t, stream); msgs < 2 {
		t.Errorf("stream holds %d, want the jobs before and after the stall", msgs)
	}
}

// TestReconnectDelayBacksOffWithJitter: the wait doubles from 250ms to
// 30s, each drawn from the upper half of its step, so a fleet that lost
// its link together does not redial together.
func TestReconnectDelayBacksOffWithJitter(t *testing.T) {
	for _, tt := range []struct {
		attempts int
		step     time.Duration
	}{{1, 500 * time.Millisecond}, {2, time.Second}, {4, 4 * time.Second}, {7, reconnectMax}, {100, reconnectMax}} {
		seen := map[time.Duration]bool{}
		for range 50 {
			d := reconnectDelay(tt.attempts)
			if d < tt.step/2 || d >= tt.step {
				t.Fatalf("attempt %d: %v, want in [%v, %v)", tt.attempts, d, tt.step/2, tt.step)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("attempt %d: %d distinct waits in 50, want jitter", tt.attempts, len(seen))
		}
	}
}
