package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgeq/edgeq/transport/httpapi"
)

// accessRoles is the role each route needs (issue 21 item 1), written out
// here so that a route added to the server without a line here fails
// TestEveryRouteByRole.
var accessRoles = map[string]httpapi.Role{
	"POST /v1/queues/{q}/jobs":       httpapi.RoleProduce,
	"POST /v1/queues/{q}/batch":      httpapi.RoleProduce,
	"POST /v1/queues/{q}/lease":      httpapi.RoleWork,
	"POST /v1/jobs/{id}/ack":         httpapi.RoleWork,
	"POST /v1/acks":                  httpapi.RoleWork,
	"POST /v1/jobs/{id}/nack":        httpapi.RoleWork,
	"POST /v1/jobs/{id}/fail":        httpapi.RoleWork,
	"POST /v1/jobs/{id}/extend":      httpapi.RoleWork,
	"GET /v1/jobs/{id}":              httpapi.RoleRead,
	"GET /v1/queues":                 httpapi.RoleRead,
	"GET /v1/queues/{q}":             httpapi.RoleRead,
	"GET /v1/stats":                  httpapi.RoleRead,
	"GET /v1/schedules":              httpapi.RoleRead,
	"GET /v1/whoami":                 httpapi.RoleRead,
	"GET /v1/schedules/{name}":       httpapi.RoleRead,
	"PUT /v1/schedules/{name}":       httpapi.RoleAdmin,
	"DELETE /v1/schedules/{name}":    httpapi.RoleAdmin,
	"GET /v1/stats/history":          httpapi.RoleRead,
	"GET /metrics":                   httpapi.RoleRead,
	"GET /readyz":                    httpapi.RoleRead,
	"DELETE /v1/jobs/{id}":           httpapi.RoleAdmin,
	"POST /v1/jobs/{id}/retry":       httpapi.RoleAdmin,
	"DELETE /v1/queues/{q}/jobs":     httpapi.RoleAdmin,
	"POST /v1/queues/{q}/pause":      httpapi.RoleAdmin,
	"POST /v1/queues/{q}/resume":     httpapi.RoleAdmin,
	"GET /v1/queues/{q}/dead":        httpapi.RoleAdmin,
	"POST /v1/queues/{q}/dead/retry": httpapi.RoleAdmin,
	"DELETE /v1/queues/{q}/dead":     httpapi.RoleAdmin,
	"POST /v1/queues/{q}/move":       httpapi.RoleAdmin,
	"POST /v1/governor/drill":        httpapi.RoleAdmin,
	"DELETE /v1/governor/drill":      httpapi.RoleAdmin,
	"GET /healthz":                   httpapi.RolePublic,
	"GET /{$}":                       httpapi.RolePublic,
	"GET /v1/openapi.json":           httpapi.RolePublic,
}

// writeToken writes a token file closed to other users.
func writeToken(t *testing.T, dir, name string) string {
	t.Helper()
	f := filepath.Join(dir, name+".token")
	if err := os.WriteFile(f, []byte(name+"-secret-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestEveryRouteByRole (issue 21 item 1): on the real binary, with one
// token per role and a queue-scoped produce token, every route the server
// registers answers each token by its role: allowed, anything but 401 and
// 403; refused, 403 forbidden naming the role missing; without a token,
// 401 unless the route is public.
func TestEveryRouteByRole(t *testing.T) {
	dir := t.TempDir()
	var conf strings.Builder
	conf.WriteString("http:\n  tokens:\n")
	for _, r := range httpapi.Roles {
		fmt.Fprintf(&conf, "    - {name: %s, file: %s, roles: [%s]}\n", r, writeToken(t, dir, string(r)), r)
	}
	fmt.Fprintf(&conf, "    - {name: sensors, file: %s, roles: [produce], queues: [\"telemetry*\"]}\n", writeToken(t, dir, "sensors"))
	d, c := apiDaemon(t, conf.String())

	routes := httpapi.Routes()
	registered := map[string]bool{}
	for _, rt := range routes {
		registered[rt.Method+" "+rt.Path] = true
	}
	for p := range accessRoles {
		if !registered[p] {
			t.Errorf("%s: in this test's table but not registered", p)
		}
	}

	path := func(p, queue string) string {
		p = strings.ReplaceAll(p, "{q}", queue)
		p = strings.ReplaceAll(p, "{id}", "0000000000000001")
		p = strings.TrimSuffix(p, "{$}")
		switch {
		case strings.HasSuffix(p, "/move"):
			p += "?to=" + queue + "-2"
		case strings.HasSuffix(p, "/ack"), strings.HasSuffix(p, "/fail"), strings.HasSuffix(p, "/extend"), strings.HasSuffix(p, "/nack"):
			p += "?lease=00000000000000000000000000000001"
		}
		return p
	}
	body := func(method, p string) string {
		switch {
		case p == "/v1/acks":
			return `{"acks":[]}`
		case strings.HasSuffix(p, "/drill") && method == "POST":
			return `{"level":"elevated","duration":"1s"}`
		case strings.HasSuffix(p, "/batch"):
			return `{"payload":1}` + "\n"
		}
		return "x"
	}
	tokens := append(httpapi.Roles[:len(httpapi.Roles):len(httpapi.Roles)], "sensors", "")
	for _, rt := range routes {
		pattern := rt.Method + " " + rt.Path
		want, ok := accessRoles[pattern]
		if !ok {
			t.Errorf("%s is registered with role %q but this test does not know it: add it to accessRoles", pattern, rt.Role)
			continue
		}
		if rt.Role != want {
			t.Errorf("%s: registered with role %q, want %q", pattern, rt.Role, want)
		}
		for _, tok := range tokens {
			name := string(tok)
			t.Run(pattern+"/"+cmpName(name), func(t *testing.T) {
				queue := "q1"
				if name == "sensors" {
					queue = "telemetry-1"
				}
				p := path(rt.Path, queue)
				c.hdr = nil
				if name != "" {
					c.hdr = []string{"Authorization", "Bearer " + name + "-secret-value"}
				}
				a := c.do(rt.Method, p, body(rt.Method, p))
				allowed := want == httpapi.RolePublic || httpapi.Role(name) == want || name == string(httpapi.RoleAdmin) ||
					(name == "sensors" && want == httpapi.RoleProduce)
				switch {
				case allowed && (a.status == 401 || a.status == 403):
					t.Errorf("%s %s as %s: %d %s, want it allowed", rt.Method, p, cmpName(name), a.status, a.body)
				case !allowed && name == "" && (a.status != 401 || a.code != "unauthorized"):
					t.Errorf("%s %s without a token: %d %s, want 401 unauthorized", rt.Method, p, a.status, a.body)
				case !allowed && name != "" && (a.status != 403 || a.code != "forbidden" || !strings.Contains(a.msg, "role "+string(want))):
					t.Errorf("%s %s as %s: %d %s, want 403 forbidden naming the role %s", rt.Method, p, name, a.status, a.body, want)
				}
			})
		}
	}

	// The scoped token touches its queues only, and lists show it those.
	c.hdr = []string{"Authorization", "Bearer sensors-secret-value"}
	c.refused("POST", "/v1/queues/billing/jobs", "x", 403, "forbidden")
	var list struct {
		Queues []struct {
			Name string `json:"name"`
		} `json:"queues"`
	}
	c.hdr = []string{"Authorization", "Bearer admin-secret-value"}
	c.ok("POST", "/v1/queues/billing/jobs", "x", 201, nil)
	c.hdr = []string{"Authorization", "Bearer read-secret-value"}
	c.ok("GET", "/v1/queues", "", 200, &list)
	if len(list.Queues) < 2 {
		t.Errorf("GET /v1/queues as read: %+v, want billing and telemetry-1 at least", list.Queues)
	}
	log := d.log.String()
	if !strings.Contains(log, `msg="request forbidden" component=httpapi token=`) || strings.Contains(log, "secret-value") {
		t.Errorf("the log must name refused tokens and never hold their values:\n%s", log)
	}
}

func cmpName(name string) string {
	if name == "" {
		return "no-token"
	}
	return name
}

// TestTokenFilesRefused: serve refuses at start, naming the key, a token
// file open to other users, an empty one, a duplicate name and two files
// holding the same token.
func TestTokenFilesRefused(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.token")
	if err := os.WriteFile(open, []byte("x1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.token")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, b := writeToken(t, dir, "a"), writeToken(t, dir, "b")
	same := filepath.Join(dir, "same.token")
	if err := os.WriteFile(same, []byte("a-secret-value"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, tokens, want string }{
		{"open to others", fmt.Sprintf("{name: o, file: %s, roles: [read]}", open), "http.tokens[0].file: " + open + " is open to other users (mode 0644)"},
		{"empty", fmt.Sprintf("{name: e, file: %s, roles: [read]}", empty), "http.tokens[0].file: " + empty + " is empty"},
		{"duplicate name", fmt.Sprintf("{name: a, file: %s, roles: [read]}, {name: a, file: %s, roles: [work]}", a, b), `http.tokens[1].name: "a" is also the name of http.tokens[0]`},
		{"same token", fmt.Sprintf("{name: a, file: %s, roles: [read]}, {name: s, file: %s, roles: [work]}", a, same), "http.tokens[1].file: " + same + " holds the same token as http.tokens[0]"},
		{"unknown role", fmt.Sprintf("{name: a, file: %s, roles: [root]}", a), `http.tokens[0].roles: unknown role "root"`},
		{"bad glob", fmt.Sprintf("{name: a, file: %s, roles: [read], queues: [\"t[\"]}", a), `http.tokens[0].queues: bad glob "t["`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := filepath.Join(t.TempDir(), "edgeq.yaml")
			if err := os.WriteFile(conf, []byte("http:\n  tokens: ["+tc.tokens+"]\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			d := spawnDaemon(t, filepath.Join(t.TempDir(), "data"), "--config", conf)
			select {
			case <-d.done:
			case <-time.After(20 * time.Second):
				t.Fatalf("serve did not exit within 20s:\n%s", d.log)
			}
			if code := d.cmd.ProcessState.ExitCode(); code != 78 || !strings.Contains(d.log.String(), tc.want) {
				t.Errorf("serve exited %d:\n%s\nwant 78 and %q", code, d.log, tc.want)
			}
		})
	}
}

// TestMQTTStrictQueues (issue 21 item 1): with mqtt.strict_queues the real
// binary takes {prefix}/jobs/{queue} only for the queues mqtt.routes name,
// and refuses another queue with an invalid notice, creating nothing.
func TestMQTTStrictQueues(t *testing.T) {
	broker := "tcp://" + startMochi(t)
	conf := filepath.Join(t.TempDir(), "edgeq.yaml")
	yaml := "mqtt:\n  broker: " + broker + "\n  client_id: edgeq-strict\n  strict_queues: true\n" +
		"  routes: [{filter: \"sensors/+\", queue: telemetry}]\n"
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	notices := make(chan string, 16)
	online := make(chan struct{}, 4)
	watcher := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("strict-watch").
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			switch {
			case string(m.Payload()) == "online":
				online <- struct{}{}
			case strings.HasPrefix(m.Topic(), "edgeq/rejected/"):
				notices <- m.Topic() + " " + string(m.Payload())
			}
		}))
	if tok := watcher.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher connect: %v", tok.Error())
	}
	defer watcher.Disconnect(0)
	if tok := watcher.SubscribeMultiple(map[string]byte{"edgeq/status/edgeq-strict": 1, "edgeq/rejected/#": 1}, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher subscribe: %v", tok.Error())
	}
	d := startDaemon(t, filepath.Join(t.TempDir(), "data"), "--config", conf)
	select {
	case <-online:
	case <-time.After(20 * time.Second):
		t.Fatalf("edgeq did not come online on the broker:\n%s", d.log)
	}
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID("strict-pub").SetCleanSession(true).SetAutoReconnect(false))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	defer pub.Disconnect(0)
	for _, topic := range []string{"edgeq/jobs/billing", "edgeq/jobs/telemetry"} {
		if tok := pub.Publish(topic, 1, false, "x"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish to %s: %v", topic, tok.Error())
		}
	}
	select {
	case n := <-notices:
		if !strings.HasPrefix(n, "edgeq/rejected/billing ") || !strings.Contains(n, `"reason":"invalid"`) {
			t.Errorf("notice %s, want edgeq/rejected/billing with reason invalid", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no rejection notice for the queue no route names")
	}
	var body string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, body = do(t, "GET", d.base+"/v1/queues/telemetry", "", nil)
		if strings.Contains(body, `"ready":1`) || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(body, `"ready":1`) {
		t.Errorf("telemetry after its message: %s, want one ready job", body)
	}
	if code, body := do(t, "GET", d.base+"/v1/queues/billing", "", nil); code != 404 {
		t.Errorf("billing after its refused message: %d %s, want 404 (not created)", code, body)
	}
}
