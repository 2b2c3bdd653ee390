// Package engine is edgeq's job queue: it takes jobs, keeps them durable,
// hands them out under leases and takes them back, retries them with
// backoff, promotes delayed jobs and dead-letters the ones that run out of
// attempts or time.
//
// # Data path
//
// Every request that changes state (enqueue, lease, ack, nack, fail, extend,
// cancel, purge, dead-letter retry and purge) becomes an op pushed into a
// bounded lock-free ring (package ring). One committer goroutine drains the
// ring in batches of up to Config.MaxBatch ops and applies them in order to
// one transaction of its store (the contract is package engine/store; more
// than one when a transaction fills: the store's Txn.Fits is asked before
// each op's writes, and answers by its own cost model, so a transaction never
// overflows half-way through an op) and commits. A second goroutine, the syncer, then calls Store.Sync
// once for the batch when any op in it belongs to a SyncAlways queue (group
// commit), delivers the batch's events and only then answers the ops'
// callers. So an enqueue's answer always follows its fsync, and many
// enqueuers share one fsync.
//
// The two stages overlap: while the syncer waits for one fsync, the
// committer applies the ops that arrive to the next batch, commits it when
// nothing more is waiting, or once it has waited 2 ms while the syncer is
// idle (its writes reach the store during the fsync), and
// hands every batch committed meanwhile to the syncer as soon as it is free:
// one fsync for all of them. So batches grow with the load, and an op that
// reaches an idle engine is committed and synced at once.
//
// One exception to "as soon as it is free": callers answered by a sync
// usually come straight back with their next op, and a sync that left
// without them would split closed-loop callers into two alternating groups
// of half the size. So the committer keeps a free syncer waiting until as
// many ops as the last sync answered have been committed, for at most that
// sync's duration and never more than 20 ms (holdFor in pipeline.go: a
// slow card's sync gives its callers the time to come back); a lone
// caller who comes back ends the wait at once. A batch only reads
// what earlier transactions committed, and every answer waits for a sync
// that began after its own commit, so no caller learns of a state that a
// crash could take back, except through View (stats, show), which reads
// committed data.
//
// When the ring is full, enqueuers wait up to Config.IntakeWait and are then
// refused with job.ErrUnavailable and a retry-after: never an unbounded queue.
//
// # Files
//
// One room per job, so that changing what an op does means reading one file:
//
//	ops.go          the exported calls: validation, admission, push, wait for the answer
//	pipeline.go     the committer (commitLoop) and its side of the syncer handover
//	syncer.go       the syncer: Store.Sync, events, answers
//	batch.go        a batch and its transactions: a new one when Txn.Fits says no
//	apply.go        the job state machine: enqueue, lease, ack, nack, fail, extend
//	acks.go         many acks in one op (AckBatch): one commit, each answered
//	apply_admin.go  cancel, purge, dead-letter retry and purge
//	maintain.go     timed scans: delayed jobs, deadlines, expired leases
//	bound.go        a queue's bounds: max_depth, max_bytes, on_full, max_age
//	sched.go        in-process dispatch: worker slots, classes, circuit breakers
//	sched_batch.go  batch handlers: a batch leased, run and answered as one
//	groups.go       ordered groups: per-group order and concurrency, O(1) leases
//	followup.go     on_success: the job a success enqueues, in its ack's transaction
//	ordered.go      ordered queues: a retry keeps its place and holds the queue
//	recover.go      the in-memory state rebuilt from the store (Start, failed commits)
//
// # Goroutines
//
// Started by Start and waited for by Stop: the committer, the syncer (owned
// by the committer, which stops it after its last batch), the scheduler loop
// and the alert loop, plus one goroutine per running in-process job (or
// batch, for a BatchHandler). Callers
// block in their own goroutines on their op's done channel. Long polls (Lease
// with Wait) wait on a per-queue channel that the syncer closes when jobs
// became ready in a batch it answered, that Resume closes, and that SetLevel
// closes for the queues a falling level no longer sheds.
//
// # State and invariants
//
// The committer is the only writer of the store and of the in-memory state:
// per-queue counters (atomics, read by stats and admission without locks), the
// per-queue ready cursor, the lease table (a map plus a deadline heap), the
// last 4096 leases that pull workers finished (so that a repeated ack or
// fail answers like the first), the positions in the timed indexes, and each
// queue's hot tail (hot.go): the newest ready jobs, kept in memory within a
// fixed engine-wide budget of 2 MiB, so that a queue that keeps up leases
// without reading the store. Memory is bounded by the number of queues and of
// held leases and by those bounds, never by the backlog: a backlog past the
// budget is read from the store when it is leased.
//
//   - Each queue's ready index is read from its cursor: ReadySeq values come
//     from the job sequence and only grow, so every entry behind the cursor
//     has been consumed, and seeks never walk the tombstones left by consumed
//     entries.
//   - The attempt counter is incremented and made durable in the same commit
//     that leases a job. A job whose lease ends unanswered (expiry, or a
//     crash: Start gives back every lease) is dead-lettered once its attempts
//     are spent, so a job that crashes the process cannot loop forever.
//   - A request refused by validation or admission (rate, max depth, and
//     last the store's space: a Store that can run out of it answers
//     Reserve, which refuses every class with job.ErrDiskFull) writes
//     nothing.
//   - A queue's bounds (max_depth, max_bytes) are decided in the committer,
//     which alone changes the counts they compare, so concurrent enqueues
//     never take a queue past them (admission only refuses early). Under
//     on_full evict_oldest, the jobs evicted for an enqueue are deleted in
//     the transaction that creates the new ones (Txn.Fits is asked for
//     both), so neither is durable without the other, and none is evicted
//     for a refused enqueue; a leased job is never evicted. Evicted and
//     aged-out (max_age) jobs are the only jobs dropped after they were
//     accepted, and only in queues that ask for it: each is counted and
//     delivered as an EventEvicted.
//   - A job's on_success follow-up is created in the transaction of its
//     ack (Txn.Fits is asked for both first), so neither is durable
//     without the other. Admission (shedding, rate) does not apply to it;
//     one that its queue's bounds have no room for is created dead there,
//     naming the bound, never evicting and never dropped.
//   - When a commit fails, every op of the batch is answered with an error
//     (job.ErrUnavailable or job.ErrDiskFull) and, once the syncer has
//     answered the batches before it, the in-memory state is rebuilt from
//     the store. When a sync fails, the ops of the batches it covered are
//     answered with job.ErrUnavailable; their writes are committed, so
//     nothing is rebuilt, and the next batch syncs again. Either way a
//     refused enqueue may still have been written (at least once, never
//     accepted-then-lost).
//
// # Ordered groups
//
// A job may carry a Group. Its queue's GroupConcurrency (default 1) bounds
// the group's slots: its leased jobs plus its retries waiting (a nacked or
// expired job keeps its ReadySeq, its place, and holds its slot while
// delayed), so with 1 a group runs strictly in order and a retry blocks only
// its own group. A ready job with a group has a group-ready entry (Queue,
// Group, ReadySeq) in the store instead of a ready entry, so the ready
// cursor and the hot tail never see it and jobs without a group lease
// exactly as before (one more atomic load). In memory (groups.go), per
// queue: each group with work (its ready and slot counts, its cursor in the
// group-ready index, the entries added in the open transaction), and a FIFO
// of the runnable groups (ready jobs and a free slot). A lease pops a
// group, takes its head (one index seek from its cursor) and queues the
// group again if it is still runnable; a group leaves the FIFO when it is
// blocked and rejoins when a slot frees, so blocked groups cost nothing per
// lease: O(1) in the number of groups. Groups and the jobs without one take
// turns. The scheduler sees ready minus the blocked grouped jobs, so a
// blocked group keeps no worker spinning. At Start the groups are rebuilt
// from the group-ready index, the delayed entries that carry a group (the
// retries waiting) and the held leases: index entries only, no records.
// The memory is a few dozen bytes per group with work.
//
// An ordered queue (QueueConfig.Ordered) does the same for its jobs
// without a group, as one group whose slots are unbounded: a retry keeps
// its ReadySeq and goes back to its place (the ready cursor moves back to
// it), and while it waits for its delay no job without a group is leased,
// so it runs again before every later job. Its delayed entry carries the
// ReadySeq, so a restart finds the queue held. Jobs leased together are
// not recalled when one of them fails: the consumer decides (the uplink
// retries the rest of its batch). With a BatchHandler such a queue has one
// batch in flight at a time.
//
// # Locks
//
// Engine.closeMu (held shared while pushing into the ring) → queue.mu (wake
// channel) ; Engine.qmu (the queue map) is never held with another lock;
// neither is sched.mu, which guards the scheduler and the dispatch state of
// every queue (queueSlots: running slots, breaker), touched only by the
// scheduler's methods. queue.groups.mu (groups.go) is taken alone, by the
// committer around its writes and by stats.
package engine
