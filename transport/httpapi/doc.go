// Package httpapi serves edgeq's HTTP API (SPEC §5) over the engine and
// holds the typed Client that the CLI and `edgeq bench` use to speak it.
//
// # Layout
//
//   - server.go: Config, Server (listener, site checks, shutdown);
//     access.go: tokens, roles and queue globs, and guard, the one check of
//     a request's token against its route's role and queues; engine.go: the Engine interface this package consumes,
//     split by role (Producer, Worker, Admin, Monitor).
//   - routes.go: the route table (each route with its role) and the JSON
//     404/405 catch-all; openapi.go, openapi.json: the OpenAPI 3.1
//     document of the routes, served at GET /v1/openapi.json.
//   - decorate.go: handlers return (any, error); decorate writes every
//     answer and error.
//   - produce.go, work.go, acks.go, admin.go: one method per endpoint, by
//     role (acks.go: POST /v1/acks and its documents);
//     params.go parses query strings into named parameters.
//   - bodies.go: the budget of request body bytes being read at once (in
//     all and per connection) and the idle deadline of a body.
//   - errors.go: the one table from engine/job sentinels to (status, code).
//   - wire.go: the JSON documents, shared by server and client; the job's
//     JSON form and the batch line live in transport/wire, shared with MQTT.
//   - batch.go: the NDJSON batch body decoder (fuzzed).
//   - metrics.go: the Prometheus collectors that read Engine.Stats and
//     Engine.Histograms at scrape time.
//   - governor.go: the optional Governor: the stats block, drills, gauges.
//   - status.go, status.html: the self-contained status page at GET /.
//   - client.go: Client and APIError; coalesce.go: the Client's optional
//     group commit of Enqueue and Ack (Client.Coalesce).
//
// # Goroutines
//
// Server.Start binds the listener and starts one goroutine, owned by the
// Server, that runs http.Server.Serve; net/http runs each connection in its
// own goroutine. Server.Shutdown stops them all and waits for them. The
// Server starts nothing else: handlers run on net/http's goroutines and call
// the Engine synchronously.
//
// A Client with Coalesce on starts, per queue (and for acks), up to
// Coalescing.InFlight sender goroutines while calls wait; each ends when its
// lane is empty, and Client.Close waits for them.
//
// # What a web page cannot do
//
// Before any route runs, ServeHTTP refuses with 403 forbidden a Host that is
// not an IP address, localhost, the listen address's host or a configured
// name (DNS rebinding), and a state-changing request a browser marks as
// cross-origin (http.CrossOriginProtection). JSON endpoints want a JSON
// Content-Type, which no page can send to another origin unasked.
//
// # Access
//
// Every route declares one Role in the route table; New wraps each handler
// in guard, which answers 401 without a known token and 403 when the
// token lacks the role or, for a token limited to some queues, the queue
// (scope says how a route names its queue). Handlers never check access;
// the two list handlers filter by the token that guard hands them in the
// request's context. Public routes (RolePublic) skip guard.
//
// # Shutdown
//
// Shutdown first flips a flag that makes every new request (but /healthz,
// /readyz and /metrics) answer 503 shutting_down and /readyz answer 503, then
// ends the long polls of /lease early, then lets http.Server.Shutdown close the
// listener and wait for in-flight requests. Call it before stopping the
// engine, so that requests already inside the engine finish normally.
//
// # Hot path
//
// Single-job enqueue is the hot path: it parses the query string without
// building a url.Values, reads a body of known length into one exactly sized
// slice (bodies of unknown length go through a pooled buffer), and writes the
// 201 answer without encoding/json. Everything else uses encoding/json.
package httpapi
