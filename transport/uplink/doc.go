// Package uplink carries jobs from the box to a cloud engine (issue 19):
// a named upstream connection that queues use as their handler
// (handler: {type: uplink, uplink: NAME}), several queues sharing one.
//
// An uplink's handler is an engine.BatchHandler: the engine leases up to
// Batch.MaxJobs jobs of its queue in one op, hands them over in one call
// and records their outcomes in one op, with a queue's concurrency
// bounding the jobs in flight. An [Uplink] coalesces the concurrent calls
// (several queues, several batches) into batches (Batch: MaxJobs,
// MaxBytes, Linger), paces each batch (MaxRate jobs/s, MaxBandwidth
// bytes/s) and answers each job with its own acknowledgement, so one
// success acks every job that made it and a partial failure acks exactly
// those, but for an ordered queue, whose jobs are acked up to the first
// that failed (ordered.go). Jobs of critical and high queues go first and
// never linger; under
// a pacer a batch holds jobs of one kind only, and a backlog batch waiting
// for its tokens gives them back to critical or high jobs that arrive.
//
// Types: nats publishes to a JetStream stream that must exist (checked at
// Start; edgeq never creates it), on a subject that expands {queue}, with
// the job id as Nats-Msg-Id so the stream drops a resend after a crash,
// Edgeq-Queue and the job's own headers; a job is acked on its PubAck.
// mqtt publishes each job as one QoS 1 message (MQTT 3.1.1, or 5 with the
// job id, queue and headers as user properties) over its own
// connection to a cloud broker, on a topic that expands {queue}, {id} and
// {header.NAME}; a batch's publishes are in flight together and each job
// is acked on its PUBACK. With Compress each payload is compressed on its
// own; MQTT 5 names the encoding in the Content-Encoding user property
// and sends a payload that would not shrink as it is, without it.
// http posts each batch as one NDJSON request (a line per job, see
// wireLine), compressed when Compress says so ([Compress], shared with
// other types); a 2xx acks every job but those its body lists as failed
// ({"failed": [ids]}), 408, 429, 502, 503, 504 and link errors leave the
// batch unreached (no request before Retry-After or the backoff), any
// other status fails the batch's jobs as an ordinary failure.
//
// Offline is normal: while the connection is down, a job is answered at
// once with a retry that says it never reached the target
// (engine.Outcome.Unreached) and counts towards the queue's breaker: it
// costs no attempt, so an outage never sends a job dead. nats.go, and the
// mqtt type's own loop, redial with exponential backoff and jitter; a
// batch that gets no acknowledgement within Timeout has its jobs retried
// the same way and the connection torn down and redialled.
//
// # Goroutines
//
// Start starts one batcher goroutine, the only one that publishes; for a
// nats uplink it hands each batch's acknowledgements to a goroutine of its
// own, so that up to maxInFlight batches are awaited while the next one is
// sent (pipelined, in order on the one connection); nats.go
// and net/http run their own connection goroutines; the mqtt type runs one goroutine that
// owns its connection (dials, redials, disconnects at Stop) besides paho's.
// Stop ends the batcher and closes the connection; it waits for both, and
// for the batches in flight, whose jobs not yet acknowledged are answered
// as unreached.
// Handler calls block on the batcher or their context, whichever comes
// first. An Uplink is safe for concurrent use.
package uplink
