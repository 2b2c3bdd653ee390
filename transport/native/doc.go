// Package native serves edgeq's native protocol (docs/protocol.md): the
// HTTP API's job operations (enqueue, batch, lease, ack, acks, nack, fail,
// extend) as length-prefixed binary frames over TCP and a unix socket,
// pipelined, answered in order, with the HTTP API's error codes
// (httpapi.ErrorAnswer). Client speaks it.
//
// Goroutines: the Server owns one accept loop per listener and, per
// connection, a reader (the connection's goroutine), a writer, which alone
// writes to the connection, and one goroutine per request in flight, at most
// Config.MaxInFlight of them. The reader hands each request to the writer in
// arrival order before starting it, so that the writer answers in that
// order. Shutdown stops the listeners, ends long polls, lets every request
// read so far be answered and waits for all of them.
//
// The Client owns, per connection, a writer goroutine that sends the frames
// callers queued (many in one write) and a reader that hands each answer to
// the oldest caller waiting.
package native
