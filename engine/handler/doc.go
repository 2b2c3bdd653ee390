// Package handler holds what the handlers that run jobs inside edgeq
// (SPEC 7) share; the handlers themselves live one per subpackage:
//
//	engine/handler/exec   package exechandler: run a command, payload on stdin
//	engine/handler/http   package httphandler: send the payload to a URL
//
// The mqtt handler publishes through the MQTT client and lives with it in
// transport/mqttapi.
//
// Package engine declares the [engine.Handler] interface and never imports
// these packages: main builds a handler from each queue's configuration
// and passes it to the engine, so the arrows point one way (handler → engine,
// main → both).
//
// # Goroutines and concurrency
//
// This package starts no goroutines and holds no state. The engine recovers
// a handler's panic itself and fails the job with a retry.
package handler
