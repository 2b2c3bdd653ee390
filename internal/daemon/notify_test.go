package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// fakeSystemd listens where $NOTIFY_SOCKET points, as systemd does.
type fakeSystemd struct {
	t    *testing.T
	conn *net.UnixConn
}

// listenNotify sets $NOTIFY_SOCKET to a unixgram socket in a temporary
// directory, or in the abstract namespace when abstract is true.
func listenNotify(t *testing.T, abstract bool) *fakeSystemd {
	t.Helper()
	name := filepath.Join(t.TempDir(), "notify.sock")
	if abstract {
		name = fmt.Sprintf("@edgeq-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", name, err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return &fakeSystemd{t: t, conn: conn}
}

// next returns the next datagram, failing the test after 10 s without one.
func (f *fakeSystemd) next() string {
	f.t.Helper()
	buf := make([]byte, 4096)
	if err := f.conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		f.t.Fatal(err)
	}
	n, err := f.conn.Read(buf)
	if err != nil {
		f.t.Fatalf("read notify socket: %v", err)
	}
	return string(buf[:n])
}

// logTo returns a logger writing into a buffer.
func logTo(buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestNotifyReadyStopping(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		t.Run(fmt.Sprintf("abstract=%v", abstract), func(t *testing.T) {
			sd := listenNotify(t, abstract)
			var logs syncBuffer
			notifyReady(logTo(&logs))
			if got := sd.next(); got != "READY=1" {
				t.Errorf("after notifyReady got %q, want READY=1", got)
			}
			notifyReloading(logTo(&logs))
			if got := sd.next(); got != "RELOADING=1" {
				t.Errorf("after notifyReloading got %q, want RELOADING=1", got)
			}
			notifyStopping(logTo(&logs))
			if got := sd.next(); got != "STOPPING=1" {
				t.Errorf("after notifyStopping got %q, want STOPPING=1", got)
			}
			if logs.String() != "" {
				t.Errorf("logged %q, want nothing", logs.String())
			}
		})
	}
}

func TestNotifyWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", "")
	var logs syncBuffer
	notifyReady(logTo(&logs))
	notifyStopping(logTo(&logs))
	// No watchdog requested: returns at once, even with a live context.
	watchdog(t.Context(), logTo(&logs), time.Now)
	if logs.String() != "" {
		t.Errorf("logged %q, want nothing outside systemd", logs.String())
	}
}

func TestNotifyUnreachableSocketWarns(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent.sock"))
	var logs syncBuffer
	notifyReady(logTo(&logs))
	if !strings.Contains(logs.String(), "systemd notify") || !strings.Contains(logs.String(), "READY=1") {
		t.Errorf("logged %q, want a warning naming READY=1", logs.String())
	}
}

func TestWatchdogPings(t *testing.T) {
	sd := listenNotify(t, false)
	t.Setenv("WATCHDOG_USEC", "40000") // pings every 20 ms
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var logs syncBuffer
	wg.Go(func() { watchdog(ctx, logTo(&logs), time.Now) })
	for i := range 3 {
		if got := sd.next(); got != "WATCHDOG=1" {
			t.Fatalf("datagram %d = %q, want WATCHDOG=1", i, got)
		}
	}
	cancel()
	wg.Wait() // watchdog returns when its context ends
	if logs.String() != "" {
		t.Errorf("logged %q, want nothing while healthy", logs.String())
	}
}

func TestWatchdogOtherPID(t *testing.T) {
	listenNotify(t, false)
	t.Setenv("WATCHDOG_USEC", "40000")
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()+1)) // meant for another process
	var logs syncBuffer
	watchdog(t.Context(), logTo(&logs), time.Now) // returns at once
	if logs.String() != "" {
		t.Errorf("logged %q, want nothing", logs.String())
	}
}

// TestWatchdogStalledHeartbeat runs the loop on synctest's clock: pings stop
// once the heartbeat is older than maxAge, and resume when it advances.
func TestWatchdogStalledHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const period, maxAge = 15 * time.Second, 2 * time.Minute
		var beat atomic.Int64
		beat.Store(time.Now().UnixNano())
		heartbeat := func() time.Time { return time.Unix(0, beat.Load()) }
		var pings atomic.Int64
		ping := func() error { pings.Add(1); return nil }
		var logs syncBuffer
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Go(func() { runWatchdog(ctx, logTo(&logs), period, maxAge, heartbeat, ping) })

		// The heartbeat never advances: pings at 0, 15 s, ..., 120 s (age
		// at most maxAge), then none.
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if got, want := pings.Load(), int64(maxAge/period)+1; got != want {
			t.Errorf("with a stalled heartbeat: %d pings, want %d", got, want)
		}
		if n := strings.Count(logs.String(), "engine heartbeat is stale"); n != 1 {
			t.Errorf("logged the stale heartbeat %d times, want once:\n%s", n, logs.String())
		}

		// The heartbeat comes back: pings resume at the next tick.
		beat.Store(time.Now().UnixNano())
		before := pings.Load()
		time.Sleep(period)
		synctest.Wait()
		if pings.Load() != before+1 {
			t.Errorf("after the heartbeat came back: %d pings, want %d", pings.Load(), before+1)
		}
		if !strings.Contains(logs.String(), "watchdog pings resume") {
			t.Errorf("logs %q do not say that pings resumed", logs.String())
		}
		cancel()
		wg.Wait()
	})
}

// TestWatchdogHealthyIdle: a committer that wakes once a minute (idle) keeps
// the pings going.
func TestWatchdogHealthyIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const period = 15 * time.Second
		var beat atomic.Int64
		beat.Store(time.Now().UnixNano())
		var pings atomic.Int64
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		var logs syncBuffer
		wg.Go(func() {
			runWatchdog(ctx, logTo(&logs), period, heartbeatMaxAge,
				func() time.Time { return time.Unix(0, beat.Load()) },
				func() error { pings.Add(1); return nil })
		})
		for range 10 { // ten idle minutes, one heartbeat each
			time.Sleep(time.Minute)
			beat.Store(time.Now().UnixNano())
		}
		synctest.Wait()
		if got, want := pings.Load(), int64(10*time.Minute/period)+1; got != want {
			t.Errorf("idle but healthy for 10 min: %d pings, want %d", got, want)
		}
		if logs.String() != "" {
			t.Errorf("logged %q, want nothing", logs.String())
		}
		cancel()
		wg.Wait()
	})
}
