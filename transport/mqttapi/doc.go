// Package mqttapi is edgeq's MQTT transport (SPEC 6): it takes jobs from
// MQTT topics, acknowledges each message to the broker only once the job it
// carries is committed, publishes rejection notices, job events, alerts and
// its own online/offline status, and provides the mqtt handler type that
// publishes a job's payload and acks the job on PUBACK.
//
// # Goroutine model
//
// paho runs message callbacks one at a time on its router goroutine
// (OrderMatters). The callback only hands the message to the intake, a
// bounded channel sized above the broker's in-flight window, so it never
// blocks the router for long and pings keep flowing. One ingest goroutine
// owns the intake: it takes every message waiting (up to maxGroup) as a
// group and commits it itself, one group at a time, so that a queue's jobs
// are stored in arrival order; the intake fills while a group commits.
// Besides their count, the bytes of the messages in hand (in the intake or
// in the group being committed) are bounded (Config.InHandBytes): past it
// the callback waits for a group to be acked, so a flood of large messages
// stays with the broker instead of the heap, and the governor never sees
// edgeq's own buffers as memory pressure. A group enqueues with one
// EnqueueBatchUncounted per queue (queues concurrently: order matters only
// within a queue), falling back to one enqueue per message, in order, when
// a batch is refused (a batch is all or nothing), then acks its messages in
// arrival order and has the engine count each refused message once. One
// publisher goroutine owns the outbound buffer of notices, events and
// alerts (QoS 0, best effort); producers never block on it (a full buffer
// drops and counts). Start starts the ingest and publisher goroutines; Stop
// waits for them and for every commit goroutine.
//
// # Invariants
//
//   - A message is acked only after its job is committed (durable when the
//     queue syncs always), or after it was refused with a reason and a notice
//     was queued. A message that could not be decided (shutdown) is never
//     acked: the broker redelivers it in the persistent session, and a route's
//     key_field makes the redelivery a duplicate rather than a second job.
//   - Subscriptions are made again on every connect and never removed: an
//     unsubscribe would stop the broker from queueing messages for the
//     persistent session while edgeq is down.
//   - Topics edgeq publishes to (rejected, events, alerts, status) are never
//     taken as jobs, even when a route's filter covers them.
package mqttapi
