package httpapi

import (
	"encoding/json"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/edgeq/edgeq/transport/wire"
)

// oaDoc is the part of an OpenAPI document the test reads.
type oaDoc struct {
	OpenAPI    string                            `json:"openapi"`
	Paths      map[string]map[string]oaOperation `json:"paths"`
	Components struct {
		Parameters map[string]oaParam    `json:"parameters"`
		Responses  map[string]oaResponse `json:"responses"`
		Schemas    map[string]oaSchema   `json:"schemas"`
	} `json:"components"`
}

type oaOperation struct {
	Role       Role                  `json:"x-edgeq-role"`
	Security   []map[string][]string `json:"security"`
	Parameters []oaParam             `json:"parameters"`
	Responses  map[string]oaResponse `json:"responses"`
	Body       map[string]any        `json:"requestBody"`
}

type oaParam struct {
	Ref      string `json:"$ref"`
	Name     string `json:"name"`
	In       string `json:"in"`
	Required bool   `json:"required"`
}

type oaResponse struct {
	Ref   string   `json:"$ref"`
	Codes []string `json:"x-edgeq-codes"`
}

type oaSchema struct {
	Properties map[string]json.RawMessage `json:"properties"`
}

func loadOpenAPI(t *testing.T) oaDoc {
	t.Helper()
	var doc oaDoc
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi: %q, want 3.1.0", doc.OpenAPI)
	}
	return doc
}

// params answers an operation's parameters by where they go, $refs
// resolved; "required query" lists the required query parameters.
func (d oaDoc) params(op oaOperation) map[string][]string {
	out := map[string][]string{}
	for _, p := range op.Parameters {
		if name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/"); ok {
			p = d.Components.Parameters[name]
		}
		out[p.In] = append(out[p.In], p.Name)
		if p.Required && p.In == "query" {
			out["required query"] = append(out["required query"], p.Name)
		}
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}

// docPath is the document's path of a route pattern's.
func docPath(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	return strings.ToLower(method), strings.TrimSuffix(path, "{$}")
}

var wantOneOf = regexp.MustCompile(`unknown query parameter \(want one of ([^)]*)\)`)

// TestOpenAPIMatchesServer walks every route the server registers: the
// document has each (and no other) with its role, path parameters, query
// parameters (the ones the handler takes, as its refusal of an unknown one
// lists them) and the statuses the server answers; its error responses
// carry errorTable's codes; its schemas have the fields of the types the
// server writes.
func TestOpenAPIMatchesServer(t *testing.T) {
	doc := loadOpenAPI(t)
	ts := mustStartServer(t, Config{Tokens: []Token{
		{Name: "admin", Value: "adm", Roles: []Role{RoleAdmin}},
		{Name: "reader", Value: "rdr", Roles: []Role{RoleRead}},
		{Name: "producer", Value: "prd", Roles: []Role{RoleProduce}},
	}})
	seen := map[string]bool{}
	for _, rt := range ts.routeTable() {
		method, path := docPath(rt.pattern)
		op, ok := doc.Paths[path][method]
		if !ok {
			t.Errorf("%s: not in openapi.json", rt.pattern)
			continue
		}
		seen[method+" "+path] = true
		if op.Role != rt.role {
			t.Errorf("%s: x-edgeq-role %q, want %q", rt.pattern, op.Role, rt.role)
		}
		wantSec := []map[string][]string{{"bearer": {string(rt.role)}}}
		if rt.role == RolePublic {
			wantSec = []map[string][]string{}
		}
		if !reflect.DeepEqual(op.Security, wantSec) {
			t.Errorf("%s: security %v, want %v", rt.pattern, op.Security, wantSec)
		}

		params := doc.params(op)
		var wildcards []string
		for _, seg := range splitPattern(rt.pattern).segs {
			if strings.HasPrefix(seg, "{") && seg != "{$}" {
				wildcards = append(wildcards, strings.Trim(seg, "{}"))
			}
		}
		slices.Sort(wildcards)
		if !slices.Equal(params["path"], wildcards) {
			t.Errorf("%s: path parameters %v, want %v", rt.pattern, params["path"], wildcards)
		}

		statuses := map[int]string{}
		probe := func(what, query, token string) reply {
			url := strings.NewReplacer("{q}", "q", "{id}", "0000000000000001", "{$}", "").Replace(strings.TrimPrefix(rt.pattern, strings.ToUpper(method)+" ")) + query
			hdr := []string{"Content-Type", "application/json"}
			if strings.HasSuffix(url, "/batch") || strings.Contains(url, "/batch?") {
				hdr[1] = "application/x-ndjson"
			}
			if token != "" {
				hdr = append(hdr, "Authorization", "Bearer "+token)
			}
			r := ts.do(t, strings.ToUpper(method), url, strings.NewReader("{}"), hdr...)
			statuses[r.status] = what
			return r
		}
		var takes []string
		r := probe("an unknown query parameter", "?zz_unknown=1", "adm")
		if m := wantOneOf.FindSubmatch(r.body); r.status == 400 && m != nil {
			takes = strings.Split(string(m[1]), ", ")
			slices.Sort(takes)
		}
		if !slices.Equal(params["query"], takes) {
			t.Errorf("%s: query parameters %v, the server takes %v", rt.pattern, params["query"], takes)
		}
		// A request with the required parameters reaches the engine (the
		// fake's answers: 404 for the unknown job, 200...).
		var required []string
		for _, name := range params["required query"] {
			required = append(required, name+"=q2")
		}
		plain := ""
		if len(required) > 0 {
			plain = "?" + strings.Join(required, "&")
		}
		probe("a plain request", plain, "adm")
		if rt.role != RolePublic {
			probe("no token", "", "")
			probe("a token without the role", "", map[bool]string{true: "prd", false: "rdr"}[rt.role == RoleRead])
		}
		for status, what := range statuses {
			if _, ok := op.Responses[strconv.Itoa(status)]; !ok {
				t.Errorf("%s: answers %d to %s, which openapi.json does not list", rt.pattern, status, what)
			}
		}
		// Every route but /healthz can answer 403 (site checks) and 503
		// (shutting down).
		for _, status := range []string{"403", "503"} {
			if _, ok := op.Responses[status]; !ok && rt.pattern != "GET /healthz" {
				t.Errorf("%s: openapi.json does not list %s", rt.pattern, status)
			}
		}
		for status, resp := range op.Responses {
			if n, _ := strconv.Atoi(status); n >= 400 && resp.Ref != "#/components/responses/E"+status {
				t.Errorf("%s: response %s is not #/components/responses/E%s", rt.pattern, status, status)
			}
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if !seen[method+" "+path] {
				t.Errorf("openapi.json has %s %s, which the server does not register", method, path)
			}
		}
	}

	// The error responses carry errorTable's codes, by status.
	codes := map[string][]string{}
	all := []string{codeInternal}
	for _, e := range errorTable {
		codes["E"+strconv.Itoa(e.status)] = append(codes["E"+strconv.Itoa(e.status)], e.code)
		all = append(all, e.code)
	}
	for name, resp := range doc.Components.Responses {
		if got := slices.Sorted(slices.Values(resp.Codes)); !slices.Equal(got, slices.Sorted(slices.Values(codes[name]))) {
			t.Errorf("components.responses.%s: codes %v, errorTable %v", name, got, codes[name])
		}
	}
	for name := range codes {
		if _, ok := doc.Components.Responses[name]; !ok {
			t.Errorf("components.responses.%s missing: errorTable has %v", name, codes[name])
		}
	}
	var errSchema struct {
		Properties struct {
			Error struct {
				Properties struct {
					Code struct {
						Enum []string `json:"enum"`
					} `json:"code"`
				} `json:"properties"`
			} `json:"error"`
		} `json:"properties"`
	}
	raw := struct {
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}{}
	if err := json.Unmarshal(openapiJSON, &raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw.Components.Schemas["Error"], &errSchema); err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(slices.Values(errSchema.Properties.Error.Properties.Code.Enum)); !slices.Equal(got, slices.Sorted(slices.Values(all))) {
		t.Errorf("Error.code enum %v, errorTable %v", got, all)
	}

	// The schemas have the fields the server writes.
	for name, v := range map[string]any{
		"EnqueueResult": EnqueueResult{}, "BatchResult": BatchResult{}, "BatchResponse": BatchResponse{},
		"JobList": JobList{}, "QueueStats": QueueStats{}, "QueueList": QueueList{}, "Governor": GovernorStats{},
		"DrillState": DrillState{}, "Stats": StatsDoc{}, "State": StateResult{}, "ExpiresAt": ExtendResult{},
		"OK": OKResult{}, "Pause": PauseResult{}, "Deleted": DeletedResult{}, "Moved": MovedResult{},
		"MoveResult": MoveResult{}, "Health": Health{}, "Readiness": Readiness{}, "DrillRequest": DrillRequest{},
		"AckRequest": AckItem{}, "AcksRequest": AcksRequest{}, "AckResult": AckResult{}, "AcksResponse": AcksResponse{},
		"Uplink": UplinkStats{}, "History": HistoryDoc{}, "QueueHistory": QueueHistory{}, "UplinkHistory": UplinkHistory{}, "Job": wire.Job{}, "Lease": wire.Lease{},
	} {
		want := jsonFields(reflect.TypeOf(v))
		got := slices.Sorted(maps.Keys(doc.Components.Schemas[name].Properties))
		if !slices.Equal(got, want) {
			t.Errorf("schema %s: properties %v, %T has %v", name, got, v, want)
		}
	}
}

// jsonFields answers the JSON names of a struct's fields, sorted.
func jsonFields(rt reflect.Type) []string {
	var out []string
	for i := range rt.NumField() {
		f := rt.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || !f.IsExported():
		case f.Anonymous && name == "":
			out = append(out, jsonFields(f.Type)...)
		case name == "":
			out = append(out, f.Name)
		default:
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// TestOpenAPIServed: GET /v1/openapi.json answers the document, without a
// token.
func TestOpenAPIServed(t *testing.T) {
	ts := mustStartServer(t, Config{Token: "s3cret"})
	r := ts.do(t, "GET", "/v1/openapi.json", nil)
	r.wantStatus(t, 200)
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if string(r.body) != string(openapiJSON) {
		t.Error("the answer is not the embedded document")
	}
}
