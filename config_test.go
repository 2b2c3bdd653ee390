package main

import (
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// TestConfigsParse parses and validates every sample under configs/ with the
// real parser, so a sample cannot drift from the code.
func TestConfigsParse(t *testing.T) {
	var files []string
	err := filepath.WalkDir("configs", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found %d samples under configs/, want edgeq.yaml and more: %v", len(files), files)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			cfg, err := loadConfig(f)
			if err != nil {
				t.Fatalf("loadConfig:\n%v", err)
			}
			if err := cfg.engineConfig(nil).Validate(); err != nil {
				t.Errorf("engine refuses the converted config: %v", err)
			}
		})
	}
}

// TestSamplesHaveTopicsOfTheirOwn: two sample boxes on one broker must not
// share a topic prefix, or each takes the other's jobs and overwrites its
// retained alerts.
func TestSamplesHaveTopicsOfTheirOwn(t *testing.T) {
	files, err := filepath.Glob("configs/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	owner := map[string]string{} // expanded prefix → sample
	for _, f := range files {
		cfg, err := loadConfig(f)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.MQTT.Broker == "" {
			continue
		}
		if cfg.MQTT.ClientID == "" {
			t.Errorf("%s: no mqtt.client_id: a sample names its session", f)
		}
		p := cfg.MQTT.topicPrefix(cfg.MQTT.ClientID)
		if other, ok := owner[p]; ok {
			t.Errorf("%s and %s share the MQTT prefix %q", other, f, p)
		}
		owner[p] = f
	}
	if len(owner) < 2 {
		t.Fatalf("%d samples use MQTT, want the gateways and the uplink", len(owner))
	}
	if got := (MQTTConfig{Prefix: "edgeq/{client_id}/x"}).topicPrefix("gw-1"); got != "edgeq/gw-1/x" {
		t.Errorf("topicPrefix = %q, want edgeq/gw-1/x", got)
	}
}

// TestReferenceConfigIsDefaults checks that configs/edgeq.yaml states the
// defaults that serve uses without a file.
func TestReferenceConfigIsDefaults(t *testing.T) {
	cfg, err := loadConfig("configs/edgeq.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Queues) == 0 {
		cfg.Queues = nil
	}
	if len(cfg.MQTT.Routes) == 0 {
		cfg.MQTT.Routes = nil
	}
	if len(cfg.HTTP.Hosts) == 0 {
		cfg.HTTP.Hosts = nil
	}
	if len(cfg.HTTP.Tokens) == 0 {
		cfg.HTTP.Tokens = nil
	}
	if len(cfg.Uplinks) == 0 {
		cfg.Uplinks = nil
	}
	if len(cfg.Schedules) == 0 {
		cfg.Schedules = nil
	}
	if want := defaultConfig(); !reflect.DeepEqual(cfg, want) {
		t.Errorf("configs/edgeq.yaml decodes to\n%+v\nwant defaultConfig()\n%+v", cfg, want)
	}
}

// TestReferenceConfigDocumentsEveryKey checks that every key of the file
// format appears in configs/edgeq.yaml, if only in a comment.
func TestReferenceConfigDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile("configs/edgeq.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type, string)
	walk = func(rt reflect.Type, path string) {
		for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice || rt.Kind() == reflect.Map {
			rt = rt.Elem()
		}
		if rt.Kind() != reflect.Struct || seen[rt] {
			return
		}
		seen[rt] = true
		for name, i := range yamlFields(rt) {
			if !strings.Contains(text, name+":") {
				t.Errorf("key %s%s is not in configs/edgeq.yaml", path, name)
			}
			walk(rt.Field(i).Type, path+name+".")
		}
	}
	walk(reflect.TypeFor[Config](), "")
}

// TestReferenceQueueExample parses the commented queue example at the end
// of configs/edgeq.yaml, which says it is valid as it stands.
func TestReferenceQueueExample(t *testing.T) {
	b, err := os.ReadFile("configs/edgeq.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "\n#queues:\n")
	if !ok {
		t.Fatal("no #queues: example in configs/edgeq.yaml")
	}
	example := "queues:\n"
	for _, l := range strings.Split(after, "\n") {
		if !strings.HasPrefix(l, "#") {
			break
		}
		example += l[1:] + "\n"
	}
	cfg, _, err := decodeConfig([]byte(example))
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatalf("example:\n%s\n%v", example, err)
	}
	for _, q := range []string{"notify", "webhook", "telemetry"} {
		if _, ok := cfg.Queues[q]; !ok {
			t.Errorf("queue %s missing from the example", q)
		}
	}
}

// TestReferenceUplinkExample parses the commented uplinks example of
// configs/edgeq.yaml with a queue that uses it.
func TestReferenceUplinkExample(t *testing.T) {
	b, err := os.ReadFile("configs/edgeq.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "\n#uplinks:\n")
	if !ok {
		t.Fatal("no #uplinks: example in configs/edgeq.yaml")
	}
	example := "uplinks:\n"
	for _, l := range strings.Split(after, "\n") {
		if !strings.HasPrefix(l, "#") {
			break
		}
		example += l[1:] + "\n"
	}
	example += "queues: {telemetry: {handler: {type: uplink, uplink: cloud}}}\n"
	cfg, _, err := decodeConfig([]byte(example))
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatalf("example:\n%s\n%v", example, err)
	}
	if u := cfg.Uplinks["cloud"]; u.Type != "nats" || u.Batch.MaxJobs != 100 {
		t.Errorf("cloud = %+v", u)
	}
}

func TestBadConfigs(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // a substring of the error
		line int    // 0: do not check
	}{
		{"unknown top key", "bogus: 1\n", "bogus: unknown key", 1},
		{"unknown nested key", "http:\n  adr: x\n", "http.adr: unknown key", 2},
		{"unknown class", "queues:\n  sync: {class: urgent}\n", `queues.sync.class: unknown class "urgent"`, 2},
		{"cpu enter below exit", "governor: {cpu: {enter: 70, exit: 75}}\n", "governor.cpu: enter 70 is below exit 75", 1},
		{"cpu enter equals exit", "governor: {cpu: {enter: 75, exit: 75}}\n", "governor.cpu: enter 75 must be above exit 75", 0},
		{"memory percentage", "governor: {memory: {enter: 120, exit: 75}}\n", "governor.memory.enter: 120 is not a percentage", 0},
		{"bad size", "max_payload: 1XB\n", `max_payload: invalid size "1XB"`, 1},
		{"payload too large", "max_payload: 128MiB\n", "max_payload: 128MiB is above the limit of 64MiB", 1},
		{"type error in flow mapping", "governor: {cpu: {enter: 90, exit: high}}\n", `governor.cpu.exit: want a number, got "high"`, 1},
		{"int type error", "queues:\n  a:\n    concurrency: lots\n", `queues.a.concurrency: want an integer, got "lots"`, 3},
		{"duration without unit", "defaults: {ttr: 30}\n", `defaults.ttr: invalid duration "30"`, 1},
		{"bad rate", "queues: {t: {rate: fast}}\n", `queues.t.rate: invalid rate "fast"`, 1},
		{"sync mode", "storage:\n  sync: sometimes\n", `storage.sync: unknown sync mode "sometimes"`, 2},
		{"memory profile", "storage: {memory: huge}\n", `storage.memory: unknown memory profile "huge"`, 0},
		{"shed_at", "queues: {a: {shed_at: panic}}\n", `queues.a.shed_at: unknown level "panic"`, 0},
		{"negative max_bytes", "queues: {a: {max_bytes: -1}}\n", `queues.a.max_bytes: invalid size "-1"`, 0},
		{"bad max_bytes", "queues: {a: {max_bytes: 1XB}}\n", `queues.a.max_bytes: invalid size "1XB"`, 0},
		{"negative max_age", "queues: {a: {max_age: -1h}}\n", "queues.a.max_age: must not be negative", 0},
		{"unknown on_full", "queues: {a: {max_depth: 5, on_full: drop_newest}}\n", `queues.a.on_full: unknown policy "drop_newest" (want reject or evict_oldest)`, 0},
		{"evict_oldest unbounded", "queues: {a: {on_full: evict_oldest, max_age: 1h}}\n", "queues.a.on_full: evict_oldest needs max_depth or max_bytes", 0},
		{"key_mode", "queues: {a: {key_mode: newest}}\n", `queues.a.key_mode: unknown mode "newest" (want window, active or replace)`, 0},
		{"retain_done", "queues: {a: {retain_done: -1h}}\n", "queues.a.retain_done: must not be negative", 0},
		{"max_result", "queues: {a: {max_result: 2MiB}}\n", "queues.a.max_result: 2MiB is outside 0..1MiB", 0},
		{"exec without command", "queues: {a: {handler: {type: exec}}}\n", "queues.a.handler.command: required for exec handlers", 0},
		{"http bad url", "queues: {a: {handler: {type: http, url: 'ftp://x'}}}\n", `queues.a.handler.url: invalid URL "ftp://x"`, 0},
		{"unknown handler", "queues: {a: {handler: {type: grpc}}}\n", `queues.a.handler.type: unknown handler type "grpc"`, 0},
		{"handler without type", "queues: {a: {handler: {timeout: 1s}}}\n", "queues.a.handler.type: required", 0},
		{"mqtt handler without broker", "queues: {a: {handler: {type: mqtt, topic: t}}}\n", "queues.a.handler.type: mqtt handlers need mqtt.broker", 0},
		{"field of another handler", "queues: {a: {handler: {type: exec, command: [x], url: 'http://h'}}}\n", "queues.a.handler.url: not used by exec handlers", 0},
		{"breaker without handler", "queues: {a: {breaker: {failures: 3}}}\n", "queues.a.breaker: needs a handler", 0},
		{"http tls cert only", "http: {tls: {cert: c.pem}}\n", "http.tls.key: required when http.tls.cert is set", 0},
		{"mqtt tls key only", "mqtt: {tls: {key: k.pem}}\n", "mqtt.tls.cert: required when mqtt.tls.key is set", 0},
		{"mqtt strict_queues without routes", "mqtt: {broker: 'tcp://h:1883', strict_queues: true}\n", "mqtt.strict_queues: no mqtt.routes name a queue", 0},
		{"token without name", "http: {tokens: [{file: t, roles: [read]}]}\n", "http.tokens[0].name: required", 0},
		{"token named token_file", "http: {tokens: [{name: token_file, file: t, roles: [read]}]}\n", `http.tokens[0].name: "token_file" is the name of http.token_file's token`, 0},
		{"token without file", "http: {tokens: [{name: a, roles: [read]}]}\n", "http.tokens[0].file: required", 0},
		{"token without roles", "http: {tokens: [{name: a, file: t}]}\n", "http.tokens[0].roles: required", 0},
		{"http addr", "http: {addr: localhost}\n", `http.addr: invalid address "localhost"`, 0},
		{"native listen", "native: {listen: localhost}\n", `native.listen: invalid address "localhost"`, 0},
		{"native socket mode", "native: {socket: /tmp/s, socket_mode: rw}\n", `native.socket_mode: want an octal file mode such as 0660, got "rw"`, 0},
		{"native max frame", "native: {socket: /tmp/s, max_frame: 1MiB}\n", "native.max_frame: 1MiB is below max_payload plus 1KiB (1025KiB)", 0},
		{"native in flight", "native: {max_in_flight: 0}\n", "native.max_in_flight: want 1 to 65536, got 0", 0},
		{"concurrency min above max", "governor: {concurrency: {min: 4, max: 2}}\n", "governor.concurrency: min 4 is above max 2", 0},
		{"invalid queue name", "queues: {Bad: {}}\n", "queues.Bad: invalid queue name", 0},
		{"duplicate key", "log:\n  level: info\n  level: debug\n", "log.level: duplicate key", 3},
		{"reserve above concurrency", "queues: {a: {concurrency: 2, reserve: 3}}\n", "queues.a.reserve: 3 is above concurrency 2", 0},
		{"inherited backoff", "queues: {a: {backoff: {initial: 20m}}}\n", "queues.a.backoff: initial 20m0s is above max 10m0s", 0},
		{"log format", "log: {format: xml}\n", `log.format: unknown format "xml"`, 0},
		{"log level", "log: {level: loud}\n", `log.level: unknown level "loud"`, 0},
		{"negative duration", "shutdown_timeout: -1s\n", "shutdown_timeout: must be positive", 1},
		{"max attempts", "defaults: {max_attempts: 0}\n", "defaults.max_attempts: must be at least 1", 0},
		{"route to unknown queue", "strict_queues: true\nmqtt: {routes: [{filter: a/b, queue: x}]}\n", `mqtt.routes[0].queue: unknown queue "x" (strict_queues is on)`, 2},
		{"route filter", "mqtt:\n  routes:\n    - {filter: 'a/#/b', queue: x}\n", "mqtt.routes[0].filter: \"a/#/b\": '#' must be the last level", 3},
		{"route without queue", "mqtt: {routes: [{filter: a}]}\n", "mqtt.routes[0].queue: required", 0},
		{"broker scheme", "mqtt: {broker: 'http://h:1883'}\n", `mqtt.broker: unsupported scheme "http"`, 0},
		{"mqtt prefix", "mqtt: {prefix: 'a/#'}\n", "mqtt.prefix:", 0},
		{"mqtt prefix placeholder", "mqtt: {prefix: 'edgeq/{host}'}\n", `mqtt.prefix: "edgeq/{host}": the only placeholder is {client_id}`, 1},
		{"mqtt prefix placeholder level", "mqtt: {prefix: '{client_id}/'}\n", "mqtt.prefix:", 1},
		{"mqtt client id wildcard", "mqtt:\n  client_id: 'gw+1'\n", `mqtt.client_id: "gw+1" must not contain the topic wildcards`, 2},
		{"list for mapping", "queues: [a, b]\n", "queues: want a mapping, got a list", 1},
		{"mapping for string", "data_dir: {a: b}\n", "data_dir: want a string, got a mapping", 1},
		{"string for list", "queues: {a: {handler: {type: exec, command: /bin/true}}}\n", "queues.a.handler.command: want a list", 0},
		{"syntax error", "http:\n  addr: [\n", "invalid YAML", 0},
		{"not a mapping", "hello\n", "want a mapping", 0},
		{"two documents", "log: {level: info}\n---\nlog: {level: debug}\n", "a second YAML document", 2},
		{"merge key", "base: &b {level: info}\nlog:\n  <<: *b\n", "not supported", 0},
		{"uplink unknown type", "uplinks: {cloud: {type: kafka}}\n", `uplinks.cloud.type: unknown uplink type "kafka"`, 1},
		{"uplink without url", "uplinks:\n  cloud: {type: nats, stream: EDGE, subject: e}\n", "uplinks.cloud.url: required for nats uplinks", 2},
		{"uplink subject wildcard", "uplinks: {cloud: {type: nats, url: 'nats://h:4222', stream: EDGE, subject: 'edge.*'}}\n", `uplinks.cloud.subject: "edge.*" must be a subject without wildcards`, 0},
		{"uplink subject placeholder", "uplinks: {cloud: {type: nats, url: 'nats://h:4222', stream: EDGE, subject: 'edge.{id}'}}\n", "uplinks.cloud.subject: \"edge.{id}\": the only placeholder is {queue}", 0},
		{"uplink batch", "uplinks: {cloud: {type: nats, url: 'nats://h:4222', stream: EDGE, subject: e, batch: {max_jobs: -1}}}\n", "uplinks.cloud.batch.max_jobs: must not be negative", 0},
		{"uplink unknown key", "uplinks: {cloud: {type: nats, creds: x}}\n", "uplinks.cloud.creds: unknown key", 0},
		{"uplink tls cert only", "uplinks: {cloud: {type: nats, url: 'nats://h:4222', stream: EDGE, subject: e, tls: {cert: c.pem}}}\n", "uplinks.cloud.tls: cert and key go together", 0},
		{"uplink mqtt topic placeholder", "uplinks: {cloud: {type: mqtt, url: 'ssl://iot:8883', client_id: site, topic: 's/{site}'}}\n", `uplinks.cloud.topic: "s/{site}": unknown placeholder {site} (want {queue}, {id} or {header.NAME})`, 0},
		{"uplink mqtt protocol", "uplinks: {cloud: {type: mqtt, url: 'ssl://iot:8883', client_id: site, topic: t, protocol: 4}}\n", `uplinks.cloud.protocol: unknown protocol "4" (want 3.1.1 or 5)`, 0},
		{"uplink mqtt alpn on tcp", "uplinks: {cloud: {type: mqtt, url: 'tcp://b:1883', client_id: site, topic: t, alpn: [x-amzn-mqtt-ca]}}\n", "uplinks.cloud.alpn: needs a TLS url", 0},
		{"uplink mqtt without client id", "uplinks: {cloud: {type: mqtt, url: 'ssl://iot:8883', topic: t}}\n", "uplinks.cloud.client_id: required for mqtt uplinks", 0},
		{"uplink nats with topic", "uplinks: {cloud: {type: nats, url: 'nats://h:4222', stream: EDGE, subject: e, topic: t}}\n", "uplinks.cloud.topic: not used by nats uplinks", 0},
		{"http uplink compress", "uplinks: {cloud: {type: http, url: 'https://h/in', compress: lz4}}\n", `uplinks.cloud.compress: unknown compression "lz4" (want gzip or zstd)`, 0},
		{"http uplink url", "uplinks: {cloud: {type: http, url: 'h:80'}}\n", `uplinks.cloud.url: "h:80": want an http:// or https:// URL`, 0},
		{"http uplink stream", "uplinks: {cloud: {type: http, url: 'https://h/in', stream: EDGE}}\n", "uplinks.cloud.stream: not used by http uplinks", 0},
		{"nats uplink headers", "uplinks: {cloud: {type: nats, url: 'nats://h:4222', stream: EDGE, subject: e, headers: {X-A: b}}}\n", "uplinks.cloud.headers: not used by nats uplinks", 0},
		{"unknown uplink", "queues: {t: {handler: {type: uplink, uplink: cloud}}}\n", `queues.t.handler.uplink: unknown uplink "cloud"`, 0},
		{"uplink handler without uplink", "queues: {t: {handler: {type: uplink}}}\n", "queues.t.handler.uplink: required for uplink handlers", 0},
		{"uplink handler timeout", "uplinks: {cloud: {type: nats, url: 'nats://h:4222', stream: EDGE, subject: e}}\nqueues: {t: {handler: {type: uplink, uplink: cloud, timeout: 5s}}}\n", "queues.t.handler.timeout: not used by uplink handlers", 0},
		{"uplink field on exec", "queues: {t: {handler: {type: exec, command: [x], uplink: cloud}}}\n", "queues.t.handler.uplink: not used by exec handlers", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "edgeq.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := loadConfig(path)
			if err == nil {
				t.Fatalf("loadConfig(%q) = nil error, want %q", tt.yaml, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error\n%v\nwant it to contain %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), path) {
				t.Errorf("error %q does not start with the file name", err)
			}
			if tt.line > 0 {
				if want := path + ":" + strconv.Itoa(tt.line) + ": " + tt.want; !strings.Contains(err.Error(), want) {
					t.Errorf("error\n%v\nwant it to contain %q", err, want)
				}
			}
		})
	}
}

// TestUplinkShapeFromIssue parses the uplinks: section exactly as issue 19
// gives it, with two queues sharing the uplink.
func TestUplinkShapeFromIssue(t *testing.T) {
	const data = `
uplinks:
  cloud: {type: nats, url: "nats://hub:4222", stream: EDGE, subject: "edge.{queue}",
          creds_file: "", tls: {ca: "", cert: "", key: ""},
          batch: {max_jobs: 100, max_bytes: 256KiB, linger: 50ms}, max_rate: 0, max_bandwidth: 0}
queues:
  telemetry: {class: normal, handler: {type: uplink, uplink: cloud}}
  alarms: {class: critical, handler: {type: uplink, uplink: cloud}, breaker: {failures: 1, cool_down: 2s}}
`
	cfg, _, err := decodeConfig([]byte(data))
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.uplinks()
	if len(u) != 1 || u[0].Name != "cloud" || u[0].URL != "nats://hub:4222" || u[0].Stream != "EDGE" ||
		u[0].Subject != "edge.{queue}" || u[0].Batch.MaxJobs != 100 || u[0].Batch.MaxBytes != 256<<10 || u[0].Batch.Linger != 50*time.Millisecond {
		t.Errorf("uplinks = %+v", u)
	}
	hs := cfg.handlers()
	if hs["telemetry"].Type != "uplink" || hs["telemetry"].Uplink != "cloud" || hs["alarms"].Uplink != "cloud" {
		t.Errorf("handlers = %+v", hs)
	}
	ec := cfg.engineConfig(nil)
	if b := ec.Queues["telemetry"].Breaker; b.Failures != 3 || b.CoolDown != 5*time.Second {
		t.Errorf("telemetry breaker = %+v, want the uplink default 3 failures, 5s", b)
	}
	if b := ec.Queues["alarms"].Breaker; b.Failures != 1 || b.CoolDown != 2*time.Second {
		t.Errorf("alarms breaker = %+v, want its own", b)
	}
	if c := ec.Queues["telemetry"].Concurrency; c != 200 {
		t.Errorf("telemetry concurrency = %d, want the uplink default of two batches (200)", c)
	}
}

// TestUplinkMQTTShape maps an mqtt uplink's keys to the uplink package.
func TestUplinkMQTTShape(t *testing.T) {
	const data = `
uplinks:
  aws: {type: mqtt, url: "ssl://iot.example:443", client_id: site-0042, username: site, password_file: /etc/p,
        protocol: "3.1.1", topic: "sites/site-0042/{queue}/{id}", alpn: [x-amzn-mqtt-ca],
        tls: {ca: ca.pem, cert: c.pem, key: k.pem}, timeout: 5s}
queues:
  telemetry: {handler: {type: uplink, uplink: aws}}
`
	cfg, _, err := decodeConfig([]byte(data))
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.uplinks()
	if len(u) != 1 || u[0].Type != "mqtt" || u[0].URL != "ssl://iot.example:443" || u[0].ClientID != "site-0042" ||
		u[0].Username != "site" || u[0].PasswordFile != "/etc/p" || u[0].Protocol != "3.1.1" ||
		u[0].Topic != "sites/site-0042/{queue}/{id}" || !slices.Equal(u[0].ALPN, []string{"x-amzn-mqtt-ca"}) ||
		u[0].TLS.Cert != "c.pem" || u[0].Timeout != 5*time.Second {
		t.Errorf("uplinks = %+v", u)
	}
}

// TestConfigErrorListsEveryProblem checks that decoding goes on after a
// problem and that validation runs on what decoded.
func TestConfigErrorListsEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	data := "max_payload: 1XB\nbogus: 1\nqueues:\n  a: {class: urgent}\n"
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := loadConfig(path)
	want := path + ":1: max_payload: invalid size \"1XB\" (want bytes or a number with KiB, MiB, GiB, KB, MB or GB)\n" +
		path + ":2: bogus: unknown key\n" +
		path + ":4: queues.a.class: unknown class \"urgent\" (want critical, high, normal, low or bulk)"
	if err == nil || err.Error() != want {
		t.Errorf("error\n%v\nwant\n%s", err, want)
	}
}

func TestEngineConfig(t *testing.T) {
	cfg, err := loadConfig("configs/gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ec := cfg.engineConfig(nil)
	if ec.MaxPayload != 256*KiB || ec.Sync != engine.SyncAlways || !ec.StrictQueues ||
		ec.MaxAttempts != 5 || ec.Workers != 8 || ec.TTR != time.Minute || ec.DedupeWindow != 24*time.Hour ||
		ec.Backoff != (engine.Backoff{Initial: time.Second, Max: 10 * time.Minute}) {
		t.Errorf("engine config %+v", ec)
	}
	want := map[string]engine.QueueConfig{
		"notify": {Class: job.ClassCritical, Concurrency: 4, Reserve: 1, Sync: engine.SyncAlways, AlertAge: time.Minute,
			Breaker: engine.Breaker{Failures: 5, CoolDown: 30 * time.Second}},
		"telemetry":   {Class: job.ClassNormal, Rate: 200, MaxDepth: 1_000_000, Sync: engine.SyncInterval, AlertAge: 5 * time.Minute},
		"upload":      {Class: job.ClassLow},
		"cloud-relay": {Class: job.ClassNormal},
		"sync":        {Class: job.ClassBulk, ShedAt: "elevated"},
	}
	if !reflect.DeepEqual(ec.Queues, want) {
		t.Errorf("queues\n%+v\nwant\n%+v", ec.Queues, want)
	}
}

func TestParseSize(t *testing.T) {
	good := map[string]Size{
		"0": 0, "1048576": 1 << 20, "1MiB": 1 << 20, "256MiB": 256 << 20, "512KiB": 512 << 10,
		"1GB": 1e9, "1GiB": 1 << 30, "2 mib": 2 << 20, "10kb": 10_000, "1.5KiB": 1536, "7B": 7, "1TiB": 1 << 40,
	}
	for in, want := range good {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1XB", "1.2.3MiB", "99999999999GiB", "1e3", "1 M i B", "0x10"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
	for s, want := range map[Size]string{MiB: "1MiB", 256 * MiB: "256MiB", GiB: "1GiB", 1536: "1536", 1000: "1000", 0: "0", 3 * KiB: "3KiB"} {
		if got := s.String(); got != want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(s), got, want)
		}
	}
}

func TestParseRate(t *testing.T) {
	good := map[string]Rate{"200/s": 200, "10/m": 10.0 / 60, "5/h": 5.0 / 3600, "3": 3, "0.5": 0.5, "0": 0, "1.5/s": 1.5, " 60 / m ": 1}
	for in, want := range good {
		if got, err := parseRate(in); err != nil || math.Abs(float64(got-want)) > 1e-12 {
			t.Errorf("parseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "fast", "-1/s", "10/d", "/s", "NaN", "Inf", "1/s/s", "10/sec"} {
		if got, err := parseRate(in); err == nil {
			t.Errorf("parseRate(%q) = %v, want an error", in, got)
		}
	}
}

func TestParseDuration(t *testing.T) {
	good := map[string]Duration{"30s": Duration(30 * time.Second), "1h30m": Duration(90 * time.Minute), "500ms": Duration(500 * time.Millisecond), "0": 0}
	for in, want := range good {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "30", "abc", "1x"} {
		if got, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", in, got)
		}
	}
}

// FuzzParseConfig checks that no input makes the parser panic, that every
// problem says something, and that a configuration the parser accepts is
// one the engine accepts too.
func FuzzParseConfig(f *testing.F) {
	for _, name := range []string{"configs/edgeq.yaml", "configs/gateway.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"", "{}", "queues: {a: {class: urgent}}", "a: &a [*a]", "max_payload: 1XB",
		"governor: {cpu: {enter: 70, exit: 75}}", "queues: {x: &q {rate: 1/s}, y: *q}",
		"mqtt: {routes: [{filter: '#', queue: q}]}", "- 1\n- 2", "--- \n...\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, _, err := decodeConfig(data)
		if cfg == nil && err == nil {
			t.Fatal("nil config and nil error")
		}
		if err != nil {
			for _, p := range err.(*ConfigError).Problems {
				if p.Msg == "" {
					t.Fatalf("problem without a message: %+v", p)
				}
			}
		}
		if cfg == nil {
			return
		}
		verr := cfg.Validate()
		if err == nil && verr == nil {
			if eerr := cfg.engineConfig(nil).Validate(); eerr != nil {
				t.Fatalf("config valid but the engine refuses it: %v\n%s", eerr, data)
			}
		}
	})
}

// TestQueueBoundsConfig: max_bytes takes sizes, max_age a duration and
// on_full a policy, and they reach the engine.
func TestQueueBoundsConfig(t *testing.T) {
	cfg, _, err := decodeConfig([]byte("queues:\n  tele: {max_depth: 1000, max_bytes: 64MiB, max_age: 24h, on_full: evict_oldest}\n  plain: {max_bytes: 1024}\n"))
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatal(err)
	}
	ec := cfg.engineConfig(nil)
	if got, want := ec.Queues["tele"], (engine.QueueConfig{MaxDepth: 1000, MaxBytes: 64 << 20, MaxAge: 24 * time.Hour, OnFull: engine.OnFullEvictOldest}); got.MaxDepth != want.MaxDepth ||
		got.MaxBytes != want.MaxBytes || got.MaxAge != want.MaxAge || got.OnFull != want.OnFull {
		t.Errorf("tele = %+v, want the bounds of %+v", got, want)
	}
	if got := ec.Queues["plain"]; got.MaxBytes != 1024 || got.OnFull != "" {
		t.Errorf("plain = %+v, want max_bytes 1024 and the default on_full", got)
	}
}

// TestReferenceScheduleExample parses the commented schedules example of
// configs/edgeq.yaml, which says it is valid as it stands.
func TestReferenceScheduleExample(t *testing.T) {
	b, err := os.ReadFile("configs/edgeq.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "\n#schedules:\n")
	if !ok {
		t.Fatal("no #schedules: example in configs/edgeq.yaml")
	}
	example := "schedules:\n"
	for _, l := range strings.Split(after, "\n") {
		if !strings.HasPrefix(l, "#") {
			break
		}
		example += l[1:] + "\n"
	}
	cfg, _, err := decodeConfig([]byte(example))
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatalf("example:\n%s\n%v", example, err)
	}
	s := cfg.schedules()["nightly-backup"]
	if s.Cron != "30 2 * * *" || s.Timezone != "Europe/Berlin" || string(s.Payload) != `{"target":"/mnt/usb"}` || s.Overlap != "skip" {
		t.Errorf("nightly-backup = %+v", s)
	}
	if _, ok := cfg.Schedules["heartbeat"]; !ok {
		t.Error("heartbeat missing from the example")
	}
}
