// Package daemon runs edgeq as a service: it wires the store, the engine,
// the resource governor, the HTTP API and MQTT together, applies reloads,
// talks to systemd (sd_notify: READY, RELOADING, STOPPING, the watchdog)
// and returns the heap to the OS after bursts (the memory trimmer).
//
// Package main owns the command line, the configuration file and exit
// codes: it maps a validated file to a Config, calls New and Run, and on
// SIGHUP calls Reload with a function that re-reads the file. The daemon
// reads no flags, variables or files of its own.
//
// # Lifecycle
//
// Run starts, in order: the queues' handlers, the store, the engine (its
// recovery ends before anything listens), the governor and trimmer, the
// HTTP API, the MQTT client; then READY=1 and the watchdog. It serves until
// its context ends and stops in the reverse order of ingest: MQTT, the
// HTTP API, the engine (dispatch, the running jobs' grace, the ring's
// flush and sync), the store, then the background goroutines. The whole
// stop is bounded by Config.ShutdownTimeout.
//
// # Goroutines
//
// Run's goroutine owns the wiring: start, every reload (Reload hands its
// request over a channel and waits for the answer) and stop. The governor's
// loop, its ticker, the trimmer and the watchdog belong to one group that
// stop cancels and waits for. The one goroutine nobody waits for is a store
// close still running at shutdown_timeout (closeStoreWithin): Badger retries
// a failing flush forever, so it is abandoned with the exiting process.
package daemon
