// Package ring is the engine's intake buffer: a bounded, lock-free,
// multi-producer multi-consumer ring buffer that sits between many enqueuers
// (the HTTP and MQTT transports) and the single committer goroutine, which
// drains it in batches with [Ring.PopBatch] and writes each batch in one
// fsynced database transaction.
//
// # Goroutine model
//
// The package starts no goroutines and holds no locks. Every method of
// [Ring] is safe for concurrent use by any number of producers and
// consumers. [Ring.TryPush], [Ring.TryPop] and [Ring.PopBatch] never block;
// [Ring.Push] is the backpressure point: it waits a bounded time for room,
// then refuses with [ErrFull].
//
// # Algorithm
//
// This is Dmitry Vyukov's bounded MPMC queue
// (https://www.1024cores.net/home/lock-free-algorithms/queues/bounded-mpmc-queue).
// The capacity is a power of two, so a position p (a 64-bit counter that
// only grows) maps to slot p & mask. Two counters hand out positions: tail
// is the next position to write, head the next to read. Each slot carries a
// sequence number that says whose turn it is:
//
//	seq == 2p     the slot is free for the producer of position p
//	seq == 2p+1   the slot holds the item of position p, ready for its consumer
//
// A producer loads tail = p and the slot's seq. If seq == 2p it claims p
// with CompareAndSwap(tail, p, p+1), writes the value, then publishes it with
// seq = 2p+1. If seq is smaller the slot still holds the item of p-cap, so
// the ring is full. If seq is larger another producer took p first; reload
// tail and retry.
//
// A consumer does the mirror image on head: if seq == 2p+1 it claims p with
// CompareAndSwap(head, p, p+1), copies the value out, zeroes the slot so the
// ring keeps no pointers alive, then releases it to the producer of the next
// lap with seq = 2(p+cap). PopBatch claims a run of consecutive published
// positions with a single CompareAndSwap, which is what makes batch draining
// cheap for the committer.
//
// Vyukov's original numbers the states p and p+1; that makes "holds p" equal
// to "free for p+1" when the capacity is 1, so it requires at least two
// slots. Doubling the numbers keeps every state distinct for any capacity,
// including 1, at no cost.
//
// # Memory ordering
//
// All sync/atomic operations are sequentially consistent in the Go memory
// model, and an atomic load that observes the value of an atomic store is
// synchronized after it. The value field of a slot is plain memory, and the
// handoff is safe because of two such pairs:
//
//   - producer: write value, then Store(seq = 2p+1); consumer: Load(seq)
//     observes 2p+1, then read value. The write happens before the read.
//   - consumer: read and zero value, then Store(seq = 2(p+cap)); next
//     producer: Load(seq) observes 2(p+cap), then write value. The read
//     happens before the overwrite.
//
// The CompareAndSwap on tail (head) gives exactly one producer (consumer) the
// right to position p: it succeeds only if the counter still reads p, and the
// counter never goes back. The check of seq before the CompareAndSwap is not
// raced by a stale lap: seq values identify their lap (2p versus 2(p+cap)),
// and a position is only claimable in the one state that names it.
//
// # Invariants
//
//   - head <= tail <= head + cap at every instant.
//   - For the slot of position p, seq moves only forward through 2p, 2p+1,
//     2(p+cap), ...; only the goroutine that claimed p moves it.
//   - A slot whose seq is even holds the zero value, except between a
//     producer's claim and its publish.
//   - Positions are uint64 and never wrap: 2^62 items at a billion a second
//     take well over a century.
//   - Items of one producer keep their order: each push takes a later
//     position than the one before, and each consumer claims positions in
//     increasing order. Across consumers there is no order.
//
// # Progress
//
// The queue is lock-free for claiming but not for handoff: a producer that is
// descheduled between its claim and its publish holds up consumers at that
// position, and TryPop and PopBatch report nothing ready (even if later
// positions are published) until it resumes; a descheduled consumer holds up
// the producer one lap later in the same way. Both windows are a few
// instructions long. A consumer must therefore treat an empty result as
// "nothing ready now", never as "nothing coming", and poll again.
//
// # False sharing
//
// head and tail are written by different groups of goroutines, so each sits
// alone on its own cache line, padded to 128 bytes to also cover CPUs that
// fetch adjacent 64-byte lines in pairs and arm64 cores with 128-byte lines.
// Slots are not padded: padding every slot would multiply memory by up to
// sixteen for pointer-sized items. The price is that a producer and a
// consumer working on neighbouring slots share a line; draining in batches
// amortizes it.
package ring
