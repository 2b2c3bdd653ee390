package httpapi

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestEveryRouteHasARole: a route registered without a role, with a role
// no token can hold, or public beyond the few routes that carry no data,
// fails here.
func TestEveryRouteHasARole(t *testing.T) {
	s, err := New(Config{}, newFakeEngine())
	if err != nil {
		t.Fatal(err)
	}
	public := []string{"GET /healthz", "GET /{$}", "GET /v1/openapi.json"}
	for _, rt := range s.routeTable() {
		switch {
		case rt.role == RolePublic:
			if !slices.Contains(public, rt.pattern) {
				t.Errorf("%s is public; only %q may be", rt.pattern, public)
			}
		case !slices.Contains(Roles, rt.role):
			t.Errorf("%s: role %q, want one of %q", rt.pattern, rt.role, Roles)
		case rt.scope == scopeQueue && !strings.Contains(rt.pattern, "{q}"):
			t.Errorf("%s: scoped by queue but names none", rt.pattern)
		case rt.scope == scopeJob && !strings.Contains(rt.pattern, "{id}"):
			t.Errorf("%s: scoped by job but names none", rt.pattern)
		}
	}
}

// TestRoutesAreTheServers: Routes, which a Server need not exist for,
// lists what a Server registers.
func TestRoutesAreTheServers(t *testing.T) {
	s, err := New(Config{}, newFakeEngine())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := Routes(), s.routes(); !slices.Equal(got, want) || len(got) != len(s.routeTable()) {
		t.Errorf("Routes() = %v\nwant %v", got, want)
	}
}

func TestCheckTokens(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tokens []Token
		want   string // "" ok
	}{
		{"ok", []Token{{Name: "a", Value: "x", Roles: []Role{RoleRead}, Queues: []string{"t*"}}}, ""},
		{"empty name", []Token{{Value: "x", Roles: []Role{RoleRead}}}, "tokens[0].name: empty"},
		{"duplicate name", []Token{{Name: "a", Value: "x", Roles: []Role{RoleRead}}, {Name: "a", Value: "y", Roles: []Role{RoleRead}}}, `tokens[1].name: "a" is also the name of tokens[0]`},
		{"empty value", []Token{{Name: "a", Value: " \n", Roles: []Role{RoleRead}}}, "tokens[0] (a): empty token"},
		{"same value", []Token{{Name: "a", Value: "x", Roles: []Role{RoleRead}}, {Name: "b", Value: "x", Roles: []Role{RoleWork}}}, "tokens[1] (b): same token as a"},
		{"no role", []Token{{Name: "a", Value: "x"}}, "tokens[0].roles: none"},
		{"unknown role", []Token{{Name: "a", Value: "x", Roles: []Role{"public"}}}, `unknown role "public"`},
		{"bad glob", []Token{{Name: "a", Value: "x", Roles: []Role{RoleRead}, Queues: []string{"t["}}}, `tokens[0].queues: bad glob "t["`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckTokens(tc.tokens)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckTokens: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckTokens: %v, want %q", err, tc.want)
			}
			if _, err := New(Config{Tokens: tc.tokens}, newFakeEngine()); err == nil {
				t.Errorf("New took tokens CheckTokens refuses")
			}
		})
	}
}

// TestScopedTokens: a token limited to some queues touches those only,
// lists show it its queues, routes that cover every queue refuse it, and
// the log names the token, never its value.
func TestScopedTokens(t *testing.T) {
	var logBuf syncBuf
	ts := mustStartServer(t, Config{
		Logger: slog.New(slog.NewTextHandler(&logBuf, nil)),
		Tokens: []Token{
			{Name: "sensors", Value: "sens-secret", Roles: []Role{RoleProduce, RoleRead}, Queues: []string{"telemetry*"}},
			{Name: "ops", Value: "ops-secret", Roles: []Role{RoleAdmin}},
			{Name: "tele-ops", Value: "tele-secret", Roles: []Role{RoleAdmin}, Queues: []string{"telemetry*"}},
		},
	})
	sens := []string{"Authorization", "Bearer sens-secret"}
	ops := []string{"Authorization", "Bearer ops-secret"}
	ts.do(t, "POST", "/v1/queues/telemetry-a/jobs", strings.NewReader("x"), sens...).wantStatus(t, 201)
	ts.do(t, "POST", "/v1/queues/billing/jobs", strings.NewReader("x"), ops...).wantStatus(t, 201)

	ts.do(t, "POST", "/v1/queues/billing/jobs", strings.NewReader("x"), sens...).wantError(t, 403, "forbidden", `token "sensors" may not touch queue "billing"`, 0)
	ts.do(t, "POST", "/v1/queues/telemetry-a/lease", nil, sens...).wantError(t, 403, "forbidden", "lacks the role work", 0)
	ts.do(t, "GET", "/metrics", nil, sens...).wantError(t, 403, "forbidden", "covers every queue", 0)

	var list QueueList
	ts.do(t, "GET", "/v1/queues", nil, sens...).decode(t, &list)
	if len(list.Queues) != 1 || list.Queues[0].Name != "telemetry-a" {
		t.Errorf("GET /v1/queues with the sensors token: %+v, want telemetry-a only", list.Queues)
	}
	ts.do(t, "GET", "/v1/queues", nil, ops...).decode(t, &list)
	if len(list.Queues) != 2 {
		t.Errorf("GET /v1/queues with the admin token: %d queues, want 2", len(list.Queues))
	}
	var st StatsDoc
	ts.do(t, "GET", "/v1/stats", nil, sens...).decode(t, &st)
	if len(st.Queues) != 1 || st.Queues[0].Name != "telemetry-a" {
		t.Errorf("GET /v1/stats with the sensors token: %+v, want telemetry-a only", st.Queues)
	}

	var billing string
	ts.eng.with(func(f *fakeEngine) {
		for id, j := range f.jobs {
			if j.Queue == "billing" {
				billing = id.String()
			}
		}
	})
	ts.do(t, "GET", "/v1/jobs/"+billing, nil, sens...).wantError(t, 403, "forbidden", `queue "billing"`, 0)
	ts.do(t, "GET", "/v1/jobs/"+billing, nil, ops...).wantStatus(t, 200)

	ts.do(t, "POST", "/v1/queues/telemetry-a/move?to=billing", nil, sens...).wantError(t, 403, "forbidden", "lacks the role admin", 0)
	ts.do(t, "POST", "/v1/queues/telemetry-a/move?to=billing", nil, "Authorization", "Bearer tele-secret").wantError(t, 403, "forbidden", `may not touch queue "billing"`, 0)
	ts.do(t, "POST", "/v1/queues/telemetry-a/move?to=billing", nil, ops...).wantStatus(t, 200)

	log := logBuf.String()
	if !strings.Contains(log, "token=sensors") {
		t.Errorf("log does not name the refused token:\n%s", log)
	}
	if strings.Contains(log, "secret") {
		t.Errorf("log holds a token's value:\n%s", log)
	}
}

// TestTokenFileIsAdmin: Config.Token is one admin token; with Tokens
// beside it both work.
func TestTokenFileIsAdmin(t *testing.T) {
	ts := mustStartServer(t, Config{Token: "main", Tokens: []Token{{Name: "r", Value: "reader", Roles: []Role{RoleRead}}}})
	ts.do(t, "POST", "/v1/queues/q/pause", nil, "Authorization", "Bearer main").wantStatus(t, 200)
	ts.do(t, "POST", "/v1/queues/q/pause", nil, "Authorization", "Bearer reader").wantError(t, 403, "forbidden", "lacks the role admin", 0)
	ts.do(t, "GET", "/v1/stats", nil, "Authorization", "Bearer reader").wantStatus(t, 200)
	ts.do(t, "GET", "/v1/stats", nil, "Authorization", "Bearer other").wantError(t, 401, "unauthorized", "Bearer", 0)
}

// syncBuf is a bytes.Buffer safe for the server's goroutines and the test.
type syncBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
