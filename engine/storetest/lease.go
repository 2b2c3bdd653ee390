package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

// The Lease tests: a lease as the engine writes it (ready → leased, or
// leased → leased for an extension, changing only State, Attempt, LeaseID
// and LeaseExpires) reads back as written, with its payload, in the Txn
// that wrote it, in a later View and after a restart, and every way out of
// leased leaves no trace of the lease. A store may keep such a lease apart
// from the rest of the record (Badger does, to write less): these tests
// check that nothing of that shows.

// leaseJobs are the jobs the Lease tests start from, with a payload of n
// bytes: a plain ready job, one with headers, a key and an expiry, and one
// that was leased before (Attempt 2, LastError set).
func leaseJobs(n int) []*job.Job {
	pay := func(id job.ID) func(*job.Job) { return func(j *job.Job) { j.Payload = sizedPayload(id, n) } }
	return []*job.Job{
		mkJob(1, "q", job.StateReady, pay(1)),
		mkJob(2, "q", job.StateReady, pay(2), withExpiry(sec(900)), func(j *job.Job) {
			j.Headers = map[string]string{"h": "v", "x": ""}
			j.Key = "key-2"
		}),
		mkJob(3, "other", job.StateReady, pay(3), func(j *job.Job) {
			j.Attempt, j.LastError, j.RunAt = 2, "exit status 1", sec(5)
		}),
	}
}

// leaseOf is j leased as the engine leases it: the next attempt, a lease
// id and its expiry; nothing else changes.
func leaseOf(j *job.Job, id string, expires time.Time) *job.Job {
	next := j.Clone()
	next.State, next.Attempt, next.LeaseID, next.LeaseExpires = job.StateLeased, j.Attempt+1, id, expires
	return next
}

// withPayload is j with want's payload: what Job(id, true) must return.
func withPayload(j, want *job.Job) *job.Job {
	c := j.Clone()
	c.Payload, c.Size = want.Payload, len(want.Payload)
	return c
}

func checkBoth(t *testing.T, r store.ReadTx, want *job.Job) {
	t.Helper()
	checkJob(t, r, want, false)
	checkJob(t, r, want, true)
}

// checkStored reads each of jobs back from committed data, with and
// without its payload, and compares the indexes with the model of jobs.
func checkStored(t *testing.T, s store.Store, jobs ...*job.Job) {
	t.Helper()
	view(t, s, func(r store.ReadTx) {
		for _, j := range jobs {
			checkBoth(t, r, j)
		}
		checkIndexes(t, r, jobs...)
	})
}

func update(t *testing.T, tx store.Txn, prev, next *job.Job) {
	t.Helper()
	if err := tx.Update(prev, next); err != nil {
		t.Fatalf("Update(%d: %s → %s): %v", prev.ID, prev.State, next.State, err)
	}
}

// readJob reads id without its payload, as the engine does before an Update.
func readJob(t *testing.T, r store.ReadTx, id job.ID) *job.Job {
	t.Helper()
	j, err := r.Job(id, false)
	if err != nil {
		t.Fatalf("Job(%d): %v", id, err)
	}
	return j
}

// leaseAll leases jobs in one Txn and returns them leased, with payloads.
// Job 1's prev is read in the Txn, job 2's in a View before it, job 3's is
// the caller's copy (with its payload).
func leaseAll(t *testing.T, s store.Store, jobs []*job.Job) []*job.Job {
	t.Helper()
	var viewed *job.Job
	view(t, s, func(r store.ReadTx) { viewed = readJob(t, r, jobs[1].ID) })
	var leased []*job.Job
	write(t, s, func(tx store.Txn) {
		prevs := []*job.Job{readJob(t, tx, jobs[0].ID), viewed, jobs[2]}
		for i, prev := range prevs {
			next := leaseOf(prev, fmt.Sprintf("lease-%d", prev.ID), sec(60+i))
			update(t, tx, prev, next)
			want := withPayload(next, jobs[i])
			checkBoth(t, tx, want) // read-your-writes
			leased = append(leased, want)
		}
	})
	return leased
}

// testLeaseReadBack: a lease reads back leased, with the new Attempt,
// LeaseID and LeaseExpires and the payload intact, in its Txn and in a
// later View; the indexes list it leased. Also a lease in the Txn that
// created the job, and a lease that changes another field too.
func testLeaseReadBack(t *testing.T, h Harness) {
	for _, n := range payloadSizes {
		t.Run(fmt.Sprintf("%dB", n), func(t *testing.T) {
			s := h.Open(t)
			jobs := leaseJobs(n)
			create(t, s, jobs...)
			leased := leaseAll(t, s, jobs)
			checkStored(t, s, leased...)

			// Created and leased in one Txn.
			fresh := mkJob(4, "q", job.StateReady, func(j *job.Job) { j.Payload = sizedPayload(4, n) })
			// Leased with another change (a note in LastError).
			noted := readJobView(t, s, 1)
			var all []*job.Job
			write(t, s, func(tx store.Txn) {
				if err := tx.Create(fresh); err != nil {
					t.Fatal(err)
				}
				next := leaseOf(fresh, "lease-4", sec(70))
				update(t, tx, fresh, next)
				fresh = withPayload(next, fresh)
				checkBoth(t, tx, fresh)

				next = noted.Clone()
				next.LeaseExpires, next.LastError = sec(80), "noted"
				update(t, tx, noted, next)
				noted = withPayload(next, leased[0])
				checkBoth(t, tx, noted)
			})
			all = append(all, noted, leased[1], leased[2], fresh)
			checkStored(t, s, all...)
		})
	}
}

func readJobView(t *testing.T, s store.Store, id job.ID) *job.Job {
	t.Helper()
	var j *job.Job
	view(t, s, func(r store.ReadTx) { j = readJob(t, r, id) })
	return j
}

// testLeaseExtend: an extension (leased → leased with a new LeaseExpires)
// reads back, twice in one Txn and across Txns, for jobs leased by Update
// and for one created leased.
func testLeaseExtend(t *testing.T, h Harness) {
	for _, n := range payloadSizes {
		t.Run(fmt.Sprintf("%dB", n), func(t *testing.T) {
			s := h.Open(t)
			jobs := leaseJobs(n)
			created := mkJob(4, "q", job.StateLeased, func(j *job.Job) { j.Payload = sizedPayload(4, n) })
			create(t, s, append(jobs, created)...)
			leased := append(leaseAll(t, s, jobs), created)
			var want []*job.Job
			write(t, s, func(tx store.Txn) {
				for i, j := range leased {
					prev := readJob(t, tx, j.ID)
					ext := prev.Clone()
					ext.LeaseExpires = sec(300 + i)
					update(t, tx, prev, ext)
					checkBoth(t, tx, withPayload(ext, j))
					again := ext.Clone()
					again.LeaseExpires = sec(400 + i)
					update(t, tx, ext, again)
					checkBoth(t, tx, withPayload(again, j))
					want = append(want, withPayload(again, j))
				}
			})
			checkStored(t, s, want...)
			// One more extension in a Txn of its own, from a View's read.
			prev := readJobView(t, s, 2)
			ext := prev.Clone()
			ext.LeaseExpires = sec(500)
			write(t, s, func(tx store.Txn) { update(t, tx, prev, ext) })
			want[1] = withPayload(ext, want[1])
			checkStored(t, s, want...)
		})
	}
}

// nack is leased j back to ready, as the engine's nack or lease expiry
// does: a new ReadySeq and RunAt, the lease cleared, Attempt kept.
func nack(j *job.Job, seq uint64) *job.Job {
	next := j.Clone()
	next.State, next.ReadySeq, next.RunAt = job.StateReady, seq, sec(int(seq))
	next.LeaseID, next.LeaseExpires, next.LastError = "", time.Time{}, "nacked"
	return next
}

// testLeaseThenNack: a leased job moved back to ready (or delayed, or dead)
// reads back in its new state with the Attempt of the lease; Leased no
// longer lists it and Ready does. Both in the Txn of the lease and in a
// later one; then a second lease of the nacked job.
func testLeaseThenNack(t *testing.T, h Harness) {
	for _, n := range payloadSizes {
		t.Run(fmt.Sprintf("%dB", n), func(t *testing.T) {
			s := h.Open(t)
			jobs := leaseJobs(n)
			fresh := mkJob(4, "q", job.StateReady, func(j *job.Job) { j.Payload = sizedPayload(4, n) })
			create(t, s, append(jobs, fresh)...)
			leased := leaseAll(t, s, jobs)
			var want []*job.Job
			write(t, s, func(tx store.Txn) {
				for i, j := range leased {
					prev := readJob(t, tx, j.ID)
					var next *job.Job
					switch i {
					case 0, 1:
						next = nack(prev, uint64(100+i))
					case 2:
						next = prev.Clone()
						next.State, next.LeaseID, next.LeaseExpires, next.LastError = job.StateDead, "", time.Time{}, "exit 65"
					}
					update(t, tx, prev, next)
					checkBoth(t, tx, withPayload(next, j))
					want = append(want, withPayload(next, j))
				}
				// Leased and nacked in one Txn.
				next := leaseOf(fresh, "lease-4", sec(64))
				update(t, tx, fresh, next)
				back := nack(next, 104)
				update(t, tx, next, back)
				checkBoth(t, tx, withPayload(back, fresh))
				want = append(want, withPayload(back, fresh))
			})
			view(t, s, func(r store.ReadTx) {
				for _, j := range want {
					checkBoth(t, r, j)
					if j.State == job.StateReady && j.ID != 4 && j.Attempt != leased[j.ID-1].Attempt {
						t.Errorf("job %d: Attempt %d after nack, want the lease's %d", j.ID, j.Attempt, leased[j.ID-1].Attempt)
					}
				}
				checkIndexes(t, r, want...)
				if refs, err := r.Leased(0, 100); err != nil || len(refs) != 0 {
					t.Errorf("Leased after every lease ended = %v, %v; want none", refs, err)
				}
			})
			// Leased again: the next attempt.
			prev := readJobView(t, s, 1)
			again := leaseOf(prev, "lease-1b", sec(200))
			write(t, s, func(tx store.Txn) { update(t, tx, prev, again) })
			want[0] = withPayload(again, want[0])
			if again.Attempt != leased[0].Attempt+1 {
				t.Errorf("second lease: Attempt %d, want %d", again.Attempt, leased[0].Attempt+1)
			}
			checkStored(t, s, want...)
		})
	}
}

// testLeaseThenDelete: a leased job deleted with its Size (as the ack does)
// is gone, in a Txn after the lease and in the lease's own Txn; a
// bystander stays.
func testLeaseThenDelete(t *testing.T, h Harness) {
	for _, n := range payloadSizes {
		t.Run(fmt.Sprintf("%dB", n), func(t *testing.T) {
			s := h.Open(t)
			jobs := leaseJobs(n)
			fresh := mkJob(4, "q", job.StateReady, func(j *job.Job) { j.Payload = sizedPayload(4, n) })
			bystander := mkJob(5, "q", job.StateReady, withExpiry(sec(950)))
			create(t, s, append(jobs, fresh, bystander)...)
			leased := leaseAll(t, s, jobs)
			ack := func(j *job.Job) *job.Job {
				// Delete reads only ID, Queue, State, Size and the fields
				// that key its index.
				return &job.Job{ID: j.ID, Queue: j.Queue, State: j.State, Size: j.Size, ReadySeq: j.ReadySeq,
					RunAt: j.RunAt, ExpiresAt: j.ExpiresAt, LeaseExpires: j.LeaseExpires}
			}
			write(t, s, func(tx store.Txn) {
				for _, j := range leased {
					if err := tx.Delete(ack(readJob(t, tx, j.ID))); err != nil {
						t.Fatalf("Delete(%d): %v", j.ID, err)
					}
				}
				next := leaseOf(fresh, "lease-4", sec(64))
				update(t, tx, fresh, next)
				if err := tx.Delete(ack(readJob(t, tx, 4))); err != nil {
					t.Fatalf("Delete(4): %v", err)
				}
				for id := job.ID(1); id <= 4; id++ {
					if _, err := tx.Job(id, true); !errors.Is(err, job.ErrNotFound) {
						t.Errorf("Job(%d) in the Txn after Delete: err = %v, want ErrNotFound", id, err)
					}
				}
			})
			view(t, s, func(r store.ReadTx) {
				for id := job.ID(1); id <= 4; id++ {
					if _, err := r.Job(id, true); !errors.Is(err, job.ErrNotFound) {
						t.Errorf("Job(%d) after Delete: err = %v, want ErrNotFound", id, err)
					}
				}
				checkJob(t, r, bystander, true)
				checkIndexes(t, r, bystander)
			})
		})
	}
}

// testLeaseReopen: what recovery sees after a restart. Jobs leased in one
// Txn come back leased: Leased lists them with At = LeaseExpires and their
// queue, Counts counts them leased (not ready), Job reads the lease. Then
// recovery's move back to ready reads back too.
func testLeaseReopen(t *testing.T, h Harness) {
	if h.Reopen == nil {
		t.Skip("the store has no durable backing (Harness.Reopen is nil): nothing survives a restart to check")
	}
	for _, n := range payloadSizes {
		t.Run(fmt.Sprintf("%dB", n), func(t *testing.T) {
			s := h.Open(t)
			jobs := leaseJobs(n)
			create(t, s, jobs...)
			leased := leaseAll(t, s, jobs)
			if err := s.Sync(); err != nil {
				t.Fatalf("Sync: %v", err)
			}
			s = h.Reopen(t, s)
			view(t, s, func(r store.ReadTx) {
				refs, err := r.Leased(0, 100)
				if err != nil {
					t.Fatal(err)
				}
				var got, want []string
				for _, ref := range refs {
					got = append(got, timedRef(ref))
				}
				for _, j := range leased {
					want = append(want, timedRef(store.Ref{ID: j.ID, Queue: j.Queue, At: j.LeaseExpires}))
					checkBoth(t, r, j)
				}
				if !slices.Equal(got, want) {
					t.Errorf("Leased after restart = %v, want %v", got, want)
				}
				c, err := r.Counts(func(string) bool { return true })
				if err != nil {
					t.Fatal(err)
				}
				if c["q"] != (store.Counts{Leased: 2, Bytes: int64(2 * n)}) || c["other"] != (store.Counts{Leased: 1, Bytes: int64(n)}) {
					t.Errorf("Counts after restart = %v, want 2 leased in q, 1 in other, %d payload bytes each", c, n)
				}
				// Bytes only for the queues asked about.
				if c, err = r.Counts(func(q string) bool { return q == "other" }); err != nil {
					t.Fatal(err)
				}
				if c["q"] != (store.Counts{Leased: 2}) || c["other"] != (store.Counts{Leased: 1, Bytes: int64(n)}) {
					t.Errorf("Counts of other's bytes only = %v, want q's bytes left at 0", c)
				}
				if c, err = r.Counts(nil); err != nil || c["other"].Bytes != 0 {
					t.Errorf("Counts(nil) = %v, %v; want no bytes counted", c, err)
				}
				checkIndexes(t, r, leased...)
			})
			// Recovery: each lease has expired; back to ready.
			var want []*job.Job
			write(t, s, func(tx store.Txn) {
				for i, j := range leased {
					prev := readJob(t, tx, j.ID)
					next := nack(prev, uint64(200+i))
					update(t, tx, prev, next)
					want = append(want, withPayload(next, j))
				}
			})
			if err := s.Sync(); err != nil {
				t.Fatalf("Sync: %v", err)
			}
			s = h.Reopen(t, s)
			checkStored(t, s, want...)
		})
	}
}
