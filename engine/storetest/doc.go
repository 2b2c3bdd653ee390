// Package storetest is the conformance suite for store.Store: one set of
// subtests that every implementation runs (River's riverdrivertest, nats'
// testAllStoreAllPermutations), so that the engine can rely on the index
// rules, ordering and durability of store.Store without knowing which store
// it has.
//
// An implementation's test calls [Run] with a [Harness] that opens fresh,
// empty stores. The suite depends only on engine/store and engine/job,
// never on an implementation. It starts no goroutines of its own; it sleeps
// only to let an idempotency key's TTL run out (about a second).
//
// The subtests are grouped by topic: jobs.go (a job's record, transitions,
// deletion and payload), indexes.go (index reads, order, pagination),
// txn.go (idempotency keys, the sequence, what a transaction sees, Fits,
// reopening), lease.go (the lease as the engine writes it) and groups.go
// (the group-ready index, a group's retry, their restart); fixtures.go
// holds the jobs they write and the index model they compare with.
package storetest
