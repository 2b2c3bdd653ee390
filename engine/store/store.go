// Package store is the contract between the engine and its durable job
// store: the [Store] and [Txn] interfaces, the index entries they list
// ([Ref], [Counts]) and the index rules every implementation keeps. It is a
// leaf (engine/job and the standard library only), so that an
// implementation (storage.Badger, engine/memstore) and the conformance suite
// (engine/storetest) import it without importing the engine, and the engine
// imports no implementation.
//
// The engine has exactly one writer (its committer goroutine), so an
// implementation may assume that at most one Txn is open at a time; View may
// run concurrently with it.
package store

import (
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// Store is the durable job store the engine writes through. At most one Txn
// is open at a time; View may run concurrently with it.
//
// Implementations own the key layout: the engine speaks only of jobs, their
// states and the indexes below. storage.Badger is the production one.
type Store interface {
	// Begin opens a write transaction. Its reads see its own writes.
	Begin() Txn
	// View runs fn in a read-only snapshot of committed data.
	View(fn func(ReadTx) error) error
	// Sync makes every committed transaction durable (fsync). The committer
	// calls it once per batch that needs it: this is the group commit.
	Sync() error
}

// SpaceReserver is a Store that can run out of space (storage.Badger):
// Reserve admits an enqueue of jobs or refuses it with an error wrapping
// job.ErrDiskFull, so that the store keeps the room its own files need (and
// the backlog can still be leased, acked and purged). The store counts what
// the jobs will take on its disk. The engine asks it for every enqueue, of
// every class, after the queue's own rules.
type SpaceReserver interface {
	Reserve(jobs []job.New) error
}

// ReadTx reads jobs and indexes.
type ReadTx interface {
	// Job reads a job; the payload only when payload is true (Payload is
	// nil otherwise). Size, the payload's length, is set either way.
	// It answers job.ErrNotFound for an unknown id. Its errors, like
	// those of Update and Delete, name the job ("job 00000000000000ff: not
	// found"): callers add what they were doing, not the id again.
	Job(id job.ID, payload bool) (*job.Job, error)
	// Ready lists up to max entries of queue's ready index with
	// ReadySeq > after, in ReadySeq order.
	Ready(queue string, after uint64, max int) ([]Ref, error)
	// GroupReady lists up to max entries of queue's group-ready index
	// (the ready jobs that have a Group) after (from.Group, from.Seq), in
	// (Group, ReadySeq) order: groups by byte order, each in ReadySeq
	// order. The zero Ref starts at the beginning; Ref{Group: g} at g's
	// first entry. Refs carry Group.
	GroupReady(queue string, from Ref, max int) ([]Ref, error)
	// Due lists up to max entries of the timed index kind whose time is at or
	// before until, in time order, starting after the entry from (the zero Ref
	// starts at the beginning). next is the time of the first entry after the
	// returned ones, zero when there is none. A delayed entry of a job with a
	// Group carries its Group and ReadySeq (Seq) too.
	Due(kind TimedIndex, from Ref, until time.Time, max int) (refs []Ref, next time.Time, err error)
	// Dead lists up to max ids of queue's dead jobs with id > after, in id order.
	Dead(queue string, after job.ID, max int) ([]job.ID, error)
	// Leased lists up to max leased jobs with id > after, in id order.
	Leased(after job.ID, max int) ([]Ref, error)
	// Dedupe looks up an idempotency key; ok is false when it is absent or expired.
	Dedupe(queue, key string) (id job.ID, ok bool, err error)
	// Seq reads the sequence high-water mark (0 in a new store).
	Seq() (uint64, error)
	// Counts counts the index entries of every queue that has any and, for
	// the queues bytesOf reports true (none when nil), the payload bytes of
	// their ready, delayed and leased jobs, reading those jobs' records
	// only. It runs at recovery.
	Counts(bytesOf func(queue string) bool) (map[string]Counts, error)
	// Schedules reads every stored schedule, sorted by name. A Txn's read
	// sees its own writes.
	Schedules() ([]Schedule, error)
}

// Txn is the single write transaction of the committer. Nothing is visible
// to View or durable before Commit; nothing is durable before Store.Sync.
//
// Job and Dedupe see the transaction's own writes. The index reads (Ready,
// Due, Dead, Leased, Counts) see only committed data, as of the
// transaction's start: a write transaction's iterator would otherwise sort
// every pending write on each read, and the committer reads indexes many
// times per batch. The engine reads indexes from cursors that only move
// forward and checks each job it finds with Job, so it never acts twice on
// an entry its own transaction already changed.
type Txn interface {
	ReadTx
	// Fits reports whether the writes of op still fit in this transaction,
	// by the store's own measure of a transaction's size. The committer
	// asks before each operation's writes and, when the answer is no,
	// commits the transaction early and asks again in a new one, so a
	// transaction never fails for its size half-way through an operation.
	// An empty transaction must hold any one state change; an enqueue that
	// does not fit one is refused (job.ErrTooLarge).
	Fits(op Op) bool
	// Create writes a new job: payload, record and the index entry of j.State.
	// It may follow a Delete of the same id in the same transaction: the
	// job is then replaced whole, payload included (key_mode replace).
	Create(j *job.Job) error
	// Update rewrites a job's record (not its payload) and moves its index
	// entries from those of prev to those of next. prev must be the stored
	// version of the job as last read or written. The stored payload and
	// Size stay: next may come from Job(id, false). When next carries its
	// whole payload (len(next.Payload) == next.Size, as the engine's copy of
	// a job it created does), a store may write it from there instead of
	// reading the record again; the caller never passes a payload that
	// differs from the stored one. A job read from the store must exist
	// (job.ErrNotFound otherwise); an Update that carries the payload is
	// not checked against the store. Only what Job reads back is promised,
	// not how the store writes it.
	Update(prev, next *job.Job) error
	// Delete removes a job: payload, record and index entries of j.State.
	// Only ID, Queue, State, Size and the fields that key its index are
	// read. Size must be the stored payload length (as Job sets it): a
	// store may keep a large payload under a key of its own and delete it
	// only when Size says it is there.
	Delete(j *job.Job) error
	// PutDedupe records an idempotency key for ttl.
	PutDedupe(queue, key string, id job.ID, ttl time.Duration) error
	// SetSeq stores the sequence high-water mark.
	SetSeq(seq uint64) error
	// PutSchedule writes a schedule's record whole, replacing the one of
	// the same name. s.Name follows SPEC 2's queue-name pattern.
	PutSchedule(s Schedule) error
	// DeleteSchedule removes a schedule's record; an absent one is no error.
	DeleteSchedule(name string) error
	// Commit makes the writes visible and atomic (not yet synced). After
	// Commit or Discard the Txn must not be used.
	Commit() error
	// Discard drops the writes.
	Discard()
}

// Op is what one operation of the engine is about to write, in the engine's
// terms, for Txn.Fits: the store turns it into its own cost. Set Enqueue
// (and Delete) or Change, or Schedule (with Enqueue for a schedule's run).
type Op struct {
	// Enqueue is the jobs an enqueue creates: for each, a Create and, when
	// it has a Key, a PutDedupe.
	Enqueue []job.New
	// Change is the job of one state change: next of an Update, or the job
	// a Delete removes.
	Change *job.Job
	// Delete, with Enqueue, is the jobs the enqueue evicts: a Delete each,
	// in the same transaction.
	Delete []*job.Job
	// Schedule is a PutSchedule or DeleteSchedule of this record, plus one
	// PutDedupe of a key of up to MaxScheduleKey bytes (a run's overlap
	// key).
	Schedule *Schedule
}

// Schedule is the stored record of one schedule (package engine/schedule
// gives it its meaning; a store keeps it whole).
type Schedule struct {
	Name string
	// Spec is the definition of a schedule made through the API, opaque
	// to the store; nil for a schedule of the configuration file, whose
	// record keeps only its times.
	Spec []byte
	// Last is the run time up to which runs are accounted for (enqueued or
	// skipped); zero before the first.
	Last time.Time
	// Fired is the run time of the last run enqueued; zero before the first.
	Fired time.Time
}

// MaxScheduleKey bounds the dedupe key that Op.Schedule counts.
const MaxScheduleKey = 128

// TimedIndex names an index ordered by time.
type TimedIndex uint8

// Timed indexes.
const (
	// IndexDelayed holds delayed jobs by RunAt.
	IndexDelayed TimedIndex = iota + 1
	// IndexExpiry holds ready and delayed jobs that have an ExpiresAt, by ExpiresAt.
	IndexExpiry
	// IndexDone holds retained done jobs by ExpiresAt, the end of their
	// retention.
	IndexDone
)

// Ref is an index entry: enough to find the job and account for it without
// reading its record.
type Ref struct {
	ID    job.ID
	Queue string
	Group string    // the job's group: group-ready and delayed entries
	Seq   uint64    // ReadySeq: ready and group-ready entries, delayed entries of a job with a group
	At    time.Time // RunAt (ready: when it became ready; delayed), ExpiresAt or LeaseExpires
}

// Counts are a queue's index sizes, and Bytes the payload bytes (Size) of
// its ready, delayed and leased jobs (what the engine's max_bytes bounds)
// when they were asked for.
// Ready counts ready and group-ready entries.
type Counts struct {
	Ready, Delayed, Leased, Dead, Done int64
	Bytes                              int64
}

// Index rules that every Store keeps (the conformance suite checks them):
//   - StateReady without a Group: one ready entry (Queue, ReadySeq) with At = RunAt.
//   - StateReady with a Group: one group-ready entry (Queue, Group, ReadySeq)
//     with At = RunAt, and no ready entry.
//   - StateDelayed: one delayed entry (RunAt, ID).
//   - StateLeased: one leased entry (ID) with At = LeaseExpires.
//   - StateDead: one dead entry (Queue, ID).
//   - StateDone: one done entry (ExpiresAt, ID); a done job is retained
//     (retain_done) with its Result until ExpiresAt.
//   - Ready or delayed with a non-zero ExpiresAt: also an expiry entry (ExpiresAt, ID).
