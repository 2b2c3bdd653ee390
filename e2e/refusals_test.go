package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// scrape reads /metrics into a map from series (name{labels}) to value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	m, err := readMetrics(base)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readMetrics is scrape for goroutines other than the test's.
func readMetrics(base string) (map[string]float64, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// TestRefusalsCounted: on the real binary, every refusal of a job is
// counted once in edgeq_jobs_rejected_total with its reason, whatever the
// transport and wherever it is refused: HTTP 413 and 400 before the
// engine, MQTT too_large and invalid notices, and MQTT messages shed in a
// group (refused as a group, then one by one, and still counted once
// each). MQTT has metrics of its own.
func TestRefusalsCounted(t *testing.T) {
	broker := "tcp://" + startMochi(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "edgeq.yaml")
	os.WriteFile(conf, []byte("max_payload: 1KiB\nmqtt: {broker: "+broker+", client_id: edgeq-refusals}\n"+
		"queues:\n  q: {class: normal}\n  bulkq: {class: bulk}\n"), 0o600)
	d := startDaemon(t, filepath.Join(dir, "data"), "--config", conf)
	ctx := context.Background()
	c := &http.Client{Timeout: 10 * time.Second}

	// HTTP: one too large, one invalid, one taken.
	big := []byte(strings.Repeat("x", 2048))
	for _, r := range []struct {
		path string
		body []byte
		want int
	}{
		{"/v1/queues/q/jobs", big, 413},
		{"/v1/queues/q/jobs?delay=soon", []byte("x"), 400},
		{"/v1/queues/q/jobs", []byte("x"), 201},
	} {
		if code, err := call(ctx, c, "POST", d.base+r.path, r.body, nil); err != nil || code != r.want {
			t.Fatalf("POST %s: %d %v, want %d", r.path, code, err, r.want)
		}
	}

	var notices atomic.Int64
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("e2e-refusals").SetAutoReconnect(false).
		SetDefaultPublishHandler(func(mqtt.Client, mqtt.Message) { notices.Add(1) }))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer sub.Disconnect(0)
	if tok := sub.Subscribe("edgeq/rejected/#", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	// MQTT: one too large, one invalid envelope, then a flood into a queue
	// that a drill sheds.
	if code, err := call(ctx, c, "POST", d.base+"/v1/governor/drill", []byte(`{"level":"high","duration":"60s"}`), nil); err != nil || code != 200 {
		t.Fatalf("drill: %d %v", code, err)
	}
	const shed = 200
	toks := []mqtt.Token{
		sub.Publish("edgeq/jobs/q", 1, false, big),
		sub.Publish("edgeq/submit/q", 1, false, "not json"),
	}
	for i := range shed {
		toks = append(toks, sub.Publish("edgeq/jobs/bulkq", 1, false, fmt.Sprintf("m%d", i)))
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	const refused = shed + 2
	for deadline := time.Now().Add(20 * time.Second); notices.Load() < refused; {
		if time.Now().After(deadline) {
			t.Fatalf("%d rejection notices, want %d", notices.Load(), refused)
		}
		time.Sleep(20 * time.Millisecond)
	}

	m := scrape(t, d.base)
	for series, want := range map[string]float64{
		`edgeq_jobs_rejected_total{queue="q",reason="too_large"}`: 2,
		`edgeq_jobs_rejected_total{queue="q",reason="invalid"}`:   2,
		`edgeq_jobs_rejected_total{queue="bulkq",reason="shed"}`:  shed,
		`edgeq_jobs_enqueued_total{queue="q"}`:                    1,
		`edgeq_mqtt_connected`:                                    1,
		`edgeq_mqtt_messages_received_total`:                      refused,
		`edgeq_mqtt_messages_acked_total`:                         refused,
		`edgeq_mqtt_messages_rejected_total{reason="shed"}`:       shed,
		`edgeq_mqtt_messages_rejected_total{reason="too_large"}`:  1,
		`edgeq_mqtt_messages_rejected_total{reason="invalid"}`:    1,
		`edgeq_mqtt_reconnects_total`:                             0,
		`edgeq_mqtt_publishes_dropped_total`:                      0,
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
}
