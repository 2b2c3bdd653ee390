package e2e

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// startMochi runs an in-process MQTT broker on a free loopback port and
// answers its address.
func startMochi(t *testing.T) string {
	t.Helper()
	addr := freePort(t)
	startMochiAt(t, addr)
	return addr
}

// startMochiAt runs an in-process MQTT broker on addr; the function it
// answers closes it, and so does the test's cleanup.
func startMochiAt(t *testing.T, addr string) (stop func()) {
	t.Helper()
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "e2e", Address: addr})); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	stop = sync.OnceFunc(func() { srv.Close() })
	t.Cleanup(stop)
	return stop
}

// startMosquitto runs the mosquitto on PATH with a generated configuration
// on a free loopback port, killed by PID at cleanup. The settings are those
// the README asks of a broker edgeq uses: in-memory sessions kept while the
// broker runs, and a queue for an offline session big enough for the
// messages sent while edgeq restarts.
func startMosquitto(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		t.Skip("mosquitto is not on PATH (apt-get install mosquitto); the mochi variant of this test still runs")
	}
	addr := freePort(t)
	_, port, _ := strings.Cut(addr, ":")
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	err = os.WriteFile(conf, []byte(fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n"+
		"max_inflight_messages 20\nmax_queued_messages 100000\nlog_dest stderr\nlog_type error\nlog_type warning\n", port)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", log.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case <-done:
			t.Fatalf("mosquitto exited: %s", log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto does not listen on %s: %v", addr, err)
		}
	}
}

// TestMQTTCrashMochi and TestMQTTCrashMosquitto: SPEC 3 and 6 on the real
// binary. A publisher streams 4,000 QoS 1 messages with unique msg_id into a
// route with key_field msg_id; edgeq is SIGKILLed mid-stream and restarted
// on the same data directory. The persistent session holds what edgeq had
// not acked, the key makes a redelivery of a committed message a duplicate:
// exactly 4,000 distinct jobs, none lost.
func TestMQTTCrashMochi(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary; skipped in -short")
	}
	testMQTTCrash(t, startMochi(t))
}

func TestMQTTCrashMosquitto(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary; skipped in -short")
	}
	testMQTTCrash(t, startMosquitto(t))
}

func testMQTTCrash(t *testing.T, brokerAddr string) {
	const total = 4000
	dir := t.TempDir()
	broker := "tcp://" + brokerAddr
	conf := filepath.Join(t.TempDir(), "edgeq.yaml")
	err := os.WriteFile(conf, []byte("mqtt:\n  broker: "+broker+"\n  client_id: edgeq-e2e\n  routes:\n"+
		"    - {filter: 'sensors/+/reading', queue: telemetry, key_field: msg_id}\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	// The test's own client sees edgeq's retained status.
	var online atomic.Int32 // online messages seen
	watcher := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("e2e-watch").
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			if string(m.Payload()) == "online" {
				online.Add(1)
			}
		}))
	if tok := watcher.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher connect: %v", tok.Error())
	}
	defer watcher.Disconnect(0)
	if tok := watcher.Subscribe("edgeq/status/edgeq-e2e", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher subscribe: %v", tok.Error())
	}
	waitOnline := func(n int32) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for online.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("edgeq did not publish online status #%d", n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	d := startDaemon(t, dir, "--config", conf)
	waitOnline(1) // subscribed: from now on the session queues for edgeq

	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("e2e-pub").SetCleanSession(true))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	defer pub.Disconnect(0)
	var sent atomic.Int64
	pubDone := make(chan error, 1)
	go func() {
		const window = 64
		toks := make([]mqtt.Token, 0, window)
		flush := func() error {
			for _, tok := range toks {
				if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
					return fmt.Errorf("publish: %v", tok.Error())
				}
				sent.Add(1)
			}
			toks = toks[:0]
			return nil
		}
		for i := range total {
			payload := fmt.Sprintf(`{"msg_id":"m%05d","v":%d}`, i, i)
			toks = append(toks, pub.Publish(fmt.Sprintf("sensors/s%d/reading", i%7), 1, false, payload))
			if len(toks) == window {
				if err := flush(); err != nil {
					pubDone <- err
					return
				}
			}
		}
		pubDone <- flush()
	}()

	// SIGKILL edgeq mid-stream.
	deadline := time.Now().Add(30 * time.Second)
	for sent.Load() < total/4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	d.kill()
	t.Logf("killed edgeq after %d messages were published", sent.Load())
	if err := <-pubDone; err != nil {
		t.Fatal(err)
	}

	d = startDaemon(t, dir, "--config", conf)
	waitOnline(2)

	// Drain over HTTP: lease, ack (a lease's jobs in one POST /v1/acks),
	// count.
	client := &http.Client{Timeout: 10 * time.Second}
	ctx := t.Context()
	ids, keys := map[string]bool{}, map[string]bool{}
	deadline = time.Now().Add(90 * time.Second)
	for idle := 0; idle < 3 && time.Now().Before(deadline); {
		var lr struct{ Jobs []apiJob }
		code, err := call(ctx, client, "POST", d.base+"/v1/queues/telemetry/lease?max=100&wait=1s&ttr=60s", nil, &lr)
		if err != nil || code != 200 {
			t.Fatalf("lease: %d %v", code, err)
		}
		if len(lr.Jobs) == 0 {
			if len(ids) >= total {
				idle++ // nothing more arrives: no late duplicates
			}
			continue
		}
		var pairs []string
		for _, j := range lr.Jobs {
			pairs = append(pairs, j.ID, j.Lease.ID)
			if ids[j.ID] {
				t.Errorf("job %s delivered twice", j.ID)
			}
			ids[j.ID] = true
			var p struct {
				MsgID string `json:"msg_id"`
			}
			if err := json.Unmarshal(j.Payload, &p); err != nil || p.MsgID == "" {
				t.Fatalf("payload %s: %v", j.Payload, err)
			}
			if keys[p.MsgID] {
				t.Errorf("msg_id %s became two jobs", p.MsgID)
			}
			keys[p.MsgID] = true
		}
		var acked acksAnswer
		if code, err := call(ctx, client, "POST", d.base+"/v1/acks", []byte(acksBody(pairs...)), &acked); err != nil || code != 200 || len(acked.Acks) != len(lr.Jobs) {
			t.Fatalf("acks of %d jobs: %d %v, %d answers", len(lr.Jobs), code, err, len(acked.Acks))
		}
		for _, a := range acked.Acks {
			if !a.Acked {
				t.Fatalf("ack of %s: %+v", a.ID, a.Error)
			}
		}
	}
	if len(ids) != total || len(keys) != total {
		t.Fatalf("%d jobs with %d distinct msg_id, want %d", len(ids), len(keys), total)
	}
	if err := d.term(); err != nil {
		t.Errorf("SIGTERM: %v\n%s", err, d.log)
	}
}
