package uplink

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// telemetryJob is a job of 256 bytes of JSON telemetry, as uplinks carry
// (scripts/uplinkbench's reading): varying figures and a random 32-digit
// trace id padded with random hex, so that compression meets what a real
// reading gives it.
func telemetryJob(r *rand.Rand, i int) *job.Job {
	p := fmt.Appendf(nil, `{"site":"site-0042","sensor":"th-%03d","ts":%d,"temp_c":%.2f,"humidity":%.1f,"pressure_hpa":%.1f,"battery_v":%.3f,"rssi":%d,"seq":%d,"fw":"2.4.1","status":"ok","trace":"`,
		r.IntN(64), 1764800000000+int64(i)*250, 15+r.Float64()*15, 30+r.Float64()*40, 990+r.Float64()*30, 3+r.Float64()*0.6, -90+r.IntN(40), i)
	for len(p) < 254 {
		p = append(p, "0123456789abcdef"[r.IntN(16)])
	}
	j := newJob("telemetry", append(p[:254], '"', '}'))
	j.ContentType = "application/json"
	return j
}

// TestMQTTCompressedPayloads: with compress set, each job's payload goes
// out compressed and decompresses to the job's; MQTT 5 says so in a
// Content-Encoding user property (replacing one the job carries), MQTT
// 3.1.1 has no place for it (the uplink's topic and configuration tell
// the collector), so it compresses every payload, while MQTT 5 sends one
// that compression would not shrink as it is, without the property. The
// stats report the compression ratio.
func TestMQTTCompressedPayloads(t *testing.T) {
	for _, tc := range []struct{ protocol, enc string }{{"3.1.1", EncodingGzip}, {"3.1.1", EncodingZstd}, {"5", EncodingGzip}, {"5", EncodingZstd}} {
		t.Run(tc.protocol+"/"+tc.enc, func(t *testing.T) {
			b := startMQTTBroker(t, nil)
			u := startMQTTUplink(t, Config{URL: b.url("tcp"), Protocol: tc.protocol, Compress: tc.enc,
				Topic: "sites/s1/{queue}/{id}/" + tc.enc, Batch: Batch{MaxJobs: 11, Linger: time.Second}})
			jobs := make([]*job.Job, 11)
			want := map[string][]byte{}
			r := rand.New(rand.NewPCG(1, 2))
			for i := range jobs {
				jobs[i] = newJob("telemetry", bytes.Repeat(fmt.Appendf(nil, `{"sensor":"th-%03d","temp_c":21.5,"status":"ok"},`, i), 8))
				if i == len(jobs)-1 { // random bytes: compression cannot shrink them
					jobs[i].Payload = make([]byte, 64)
					for k := range jobs[i].Payload {
						jobs[i].Payload[k] = byte(r.Uint32())
					}
				}
				jobs[i].ContentType = "application/json"
				jobs[i].Headers["Content-Encoding"] = "identity"
				want["sites/s1/telemetry/"+jobs[i].ID.String()+"/"+tc.enc] = jobs[i].Payload
			}
			incompressible := jobs[len(jobs)-1]
			for i, o := range handleAll(u.Handler(job.ClassNormal), jobs) {
				if o.Verdict != engine.Ack {
					t.Fatalf("job %d: %+v, want ack", i, o)
				}
			}
			for _, pk := range b.waitReceived(t, len(jobs)) {
				raw := tc.protocol == "5" && strings.Contains(pk.TopicName, incompressible.ID.String())
				checkCompressed(t, tc.protocol, tc.enc, raw, pk, want)
			}
			if len(want) != 0 {
				t.Errorf("never received: %d jobs", len(want))
			}
			if st := u.Stats(); st.Compression <= 0 || st.Compression >= 0.5 {
				t.Errorf("compression ratio %v, want below 0.5 for repetitive JSON", st.Compression)
			}
		})
	}
}

// checkCompressed checks that pk carries one of want's payloads, by its
// topic, compressed with enc (as it is when raw), and deletes it from want.
func checkCompressed(t *testing.T, protocol, enc string, raw bool, pk packets.Packet, want map[string][]byte) {
	t.Helper()
	payload, ok := want[pk.TopicName]
	if !ok {
		t.Errorf("received %q: not a job's topic", pk.TopicName)
		return
	}
	delete(want, pk.TopicName)
	wantEnc := []string{enc}
	got, err := decodeBody(enc, pk.Payload)
	if raw { // as it is, with the job's own Content-Encoding header
		wantEnc, got, err = []string{"identity"}, pk.Payload, nil
	}
	if err != nil || !bytes.Equal(got, payload) {
		t.Errorf("%s: decoded %q, %v; want the job's payload", pk.TopicName, got, err)
	}
	var encodings []string
	for _, up := range pk.Properties.User {
		if strings.EqualFold(up.Key, "Content-Encoding") {
			encodings = append(encodings, up.Val)
		}
	}
	if protocol == "5" && (!slices.Equal(encodings, wantEnc) || pk.Properties.ContentType != "application/json") {
		t.Errorf("%s: Content-Encoding %q, content type %q; want %q, application/json", pk.TopicName, encodings, pk.Properties.ContentType, wantEnc)
	}
}

// TestMQTTCompressValidated: compress takes gzip or zstd for mqtt uplinks
// and names the key otherwise.
func TestMQTTCompressValidated(t *testing.T) {
	c := Config{Name: "cloud", Type: "mqtt", URL: "tcp://h:1883", ClientID: "c", Topic: "t", Compress: "zstd"}
	if err := c.Validate(); err != nil {
		t.Errorf("mqtt with compress zstd: %v", err)
	}
	c.Compress = "lz4"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `compress: unknown compression "lz4"`) {
		t.Errorf("mqtt with compress lz4: %v, want an error naming compress", err)
	}
}

// BenchmarkMQTTWireBytes reports the bytes a broker reads per 256 B JSON
// telemetry job (PUBLISH packets: fixed header, topic, packet id, MQTT 5
// properties, payload) over an mqtt uplink, by protocol and compression:
// go test -run - -bench MQTTWireBytes -benchtime 2000x ./transport/uplink/
func BenchmarkMQTTWireBytes(b *testing.B) {
	for _, protocol := range []string{"3.1.1", "5"} {
		for _, enc := range []string{"", EncodingGzip, EncodingZstd} {
			b.Run(protocol+"/"+cmpStr(enc, "none"), func(b *testing.B) { benchMQTTWire(b, protocol, enc) })
		}
	}
}

func benchMQTTWire(b *testing.B, protocol, enc string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	srv := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		b.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "b", Address: addr})); err != nil {
		b.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	u, err := New(Config{Name: "cloud", Type: "mqtt", URL: "tcp://" + addr, ClientID: "site-0042", Protocol: protocol,
		Topic: "sites/site-0042/{queue}/{id}", Compress: enc, Batch: Batch{MaxJobs: 100, Linger: time.Second}})
	if err != nil {
		b.Fatal(err)
	}
	if err := u.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	defer u.Stop()
	h := u.Handler(job.ClassNormal)
	r := rand.New(rand.NewPCG(7, 7))
	jobs := make([]*job.Job, b.N)
	for i := range jobs {
		jobs[i] = telemetryJob(r, i)
		jobs[i].Headers = nil
	}
	before := srv.Info.Clone().BytesReceived
	b.ResetTimer()
	for i := 0; i < len(jobs); i += 100 {
		for k, o := range handleAll(h, jobs[i:min(i+100, len(jobs))]) {
			if o.Verdict != engine.Ack {
				b.Fatalf("job %d: %+v", i+k, o)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(srv.Info.Clone().BytesReceived-before)/float64(b.N), "wire-B/job")
	b.ReportMetric(u.Stats().Compression, "ratio")
}
