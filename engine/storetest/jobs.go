package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

func testCreateRead(t *testing.T, h Harness) {
	tests := []struct {
		name string
		job  *job.Job
	}{
		{"ready", mkJob(1, "q", job.StateReady)},
		{"empty payload", mkJob(2, "q", job.StateReady, func(j *job.Job) { j.Payload = nil })},
		{"every field", mkJob(3, "q", job.StateLeased, func(j *job.Job) {
			j.Key = "order-17"
			j.Headers = map[string]string{"mqtt-topic": "sensors/1/reading", "x": ""}
			j.ExpiresAt = sec(3600)
			j.LastError = "exit status 1: \x00binary\xff"
			j.ReadySeq = 99
			j.TTR = 90 * time.Second
			j.Payload = bytes.Repeat([]byte{0, 1, 2, 0xff}, 1000)
			j.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
			j.TraceState = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
			j.OnSuccess = &job.FollowUp{Queue: "upload", Payload: []byte{0, '{', 0xff}, HasPayload: true}
		})},
		{"on_success, result as payload", mkJob(6, "q", job.StateReady, func(j *job.Job) {
			j.OnSuccess = &job.FollowUp{Queue: "upload"}
		})},
		{"on_success, empty payload given", mkJob(7, "q", job.StateReady, func(j *job.Job) {
			j.OnSuccess = &job.FollowUp{Queue: "upload", HasPayload: true}
		})},
		{"delayed", mkJob(4, "q", job.StateDelayed)},
		{"dead", mkJob(5, "q", job.StateDead)},
		{"large id and queue", mkJob(math.MaxUint64, strings.Repeat("z", 64), job.StateReady)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := h.Open(t)
			create(t, s, tc.job)
			view(t, s, func(r store.ReadTx) {
				checkJob(t, r, tc.job, true)
				checkJob(t, r, tc.job, false)
			})
		})
	}
}

func testNotFound(t *testing.T, h Harness) {
	s := h.Open(t)
	j := mkJob(7, "q", job.StateReady)
	view(t, s, func(r store.ReadTx) {
		for _, payload := range []bool{false, true} {
			if _, err := r.Job(7, payload); !errors.Is(err, job.ErrNotFound) {
				t.Errorf("Job(7, %v) in an empty store: err = %v, want ErrNotFound", payload, err)
			}
		}
	})
	create(t, s, j)
	write(t, s, func(tx store.Txn) {
		if err := tx.Delete(j); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	})
	view(t, s, func(r store.ReadTx) {
		if _, err := r.Job(7, true); !errors.Is(err, job.ErrNotFound) {
			t.Errorf("Job(7) after Delete: err = %v, want ErrNotFound", err)
		}
		checkIndexes(t, r)
	})
}

func testTransitions(t *testing.T, h Harness) {
	tests := []struct {
		name string
		prev *job.Job
		next func(j *job.Job) // mutates a clone of prev
	}{
		{"ready to leased", mkJob(1, "q", job.StateReady), func(j *job.Job) {
			j.State, j.Attempt, j.LeaseID, j.LeaseExpires = job.StateLeased, 1, "l1", sec(60)
		}},
		{"leased to ready with a new ReadySeq", mkJob(1, "q", job.StateLeased), func(j *job.Job) {
			j.State, j.ReadySeq, j.RunAt, j.LeaseID, j.LeaseExpires = job.StateReady, 50, sec(70), "", time.Time{}
		}},
		{"ready to delayed", mkJob(1, "q", job.StateReady), func(j *job.Job) {
			j.State, j.RunAt = job.StateDelayed, sec(30)
		}},
		{"delayed to ready", mkJob(1, "q", job.StateDelayed), func(j *job.Job) {
			j.State, j.ReadySeq = job.StateReady, 77
		}},
		{"leased to dead", mkJob(1, "q", job.StateLeased), func(j *job.Job) {
			j.State, j.LastError, j.LeaseID, j.LeaseExpires = job.StateDead, "exit 65", "", time.Time{}
		}},
		{"leased to delayed", mkJob(1, "q", job.StateLeased), func(j *job.Job) {
			j.State, j.RunAt, j.LeaseID, j.LeaseExpires = job.StateDelayed, sec(90), "", time.Time{}
		}},
		{"dead to ready", mkJob(1, "q", job.StateDead), func(j *job.Job) {
			j.State, j.Attempt, j.ReadySeq = job.StateReady, 0, 88
		}},
		{"leased extended", mkJob(1, "q", job.StateLeased), func(j *job.Job) {
			j.LeaseExpires = sec(500)
		}},
		{"ready record only", mkJob(1, "q", job.StateReady), func(j *job.Job) {
			j.LastError, j.Headers = "noted", map[string]string{"a": "b"}
		}},
		{"ready moved to another queue", mkJob(1, "q", job.StateReady), func(j *job.Job) {
			j.Queue, j.ReadySeq = "other", 90
		}},
		{"ready with expiry to leased", mkJob(1, "q", job.StateReady, withExpiry(sec(900))), func(j *job.Job) {
			j.State, j.LeaseID, j.LeaseExpires = job.StateLeased, "l", sec(60)
		}},
		{"delayed with expiry to ready", mkJob(1, "q", job.StateDelayed, withExpiry(sec(900))), func(j *job.Job) {
			j.State, j.ReadySeq = job.StateReady, 5
		}},
		{"leased to ready with expiry", mkJob(1, "q", job.StateLeased, withExpiry(sec(900))), func(j *job.Job) {
			j.State, j.ReadySeq, j.LeaseID, j.LeaseExpires = job.StateReady, 6, "", time.Time{}
		}},
		{"ready expiry moved", mkJob(1, "q", job.StateReady, withExpiry(sec(900))), func(j *job.Job) {
			j.ExpiresAt = sec(901)
		}},
		{"delayed to dead with expiry", mkJob(1, "q", job.StateDelayed, withExpiry(sec(900))), func(j *job.Job) {
			j.State, j.LastError = job.StateDead, "expired"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := h.Open(t)
			bystander := mkJob(2, "q", job.StateReady, withExpiry(sec(950)))
			create(t, s, tc.prev, bystander)
			view(t, s, func(r store.ReadTx) { checkIndexes(t, r, tc.prev, bystander) })

			next := tc.prev.Clone()
			tc.next(next)
			write(t, s, func(tx store.Txn) {
				if err := tx.Update(tc.prev, next); err != nil {
					t.Fatalf("Update: %v", err)
				}
			})
			view(t, s, func(r store.ReadTx) {
				checkJob(t, r, next, true) // Update keeps the payload
				checkIndexes(t, r, next, bystander)
			})
		})
	}
}

func testDelete(t *testing.T, h Harness) {
	states := []*job.Job{
		mkJob(1, "q", job.StateReady),
		mkJob(1, "q", job.StateReady, withExpiry(sec(100))),
		mkJob(1, "q", job.StateDelayed),
		mkJob(1, "q", job.StateDelayed, withExpiry(sec(100))),
		mkJob(1, "q", job.StateLeased, withExpiry(sec(100))),
		mkJob(1, "q", job.StateDead, withExpiry(sec(100))),
	}
	for _, j := range states {
		name := j.State.String()
		if !j.ExpiresAt.IsZero() {
			name += " with expiry"
		}
		t.Run(name, func(t *testing.T) {
			s := h.Open(t)
			bystander := mkJob(2, "q", j.State, withExpiry(j.ExpiresAt))
			create(t, s, j, bystander)
			// Delete reads only ID, Queue, State, Size and the fields that
			// key its index: give it nothing else.
			del := &job.Job{ID: j.ID, Queue: j.Queue, State: j.State, Size: len(j.Payload), ReadySeq: j.ReadySeq,
				RunAt: j.RunAt, ExpiresAt: j.ExpiresAt, LeaseExpires: j.LeaseExpires}
			write(t, s, func(tx store.Txn) {
				if err := tx.Delete(del); err != nil {
					t.Fatalf("Delete: %v", err)
				}
			})
			view(t, s, func(r store.ReadTx) {
				if _, err := r.Job(1, true); !errors.Is(err, job.ErrNotFound) {
					t.Errorf("Job after Delete: err = %v, want ErrNotFound", err)
				}
				checkJob(t, r, bystander, true)
				checkIndexes(t, r, bystander)
			})
		})
	}
}

// payloadSizes are the payload lengths the size tests use: empty, small,
// the edges of a store's inline limit if it has one at 512 bytes (Badger
// does), and one far above any such limit.
var payloadSizes = []int{0, 10, 512, 513, 200 << 10}

// sizedPayload is n bytes that differ from one job to the next.
func sizedPayload(id job.ID, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(int(id)*31 + i*7 + i>>8)
	}
	return p
}

// testSizeOnRead: Job sets Size with and without the payload, in a View and
// in a Txn (pending and committed).
func testSizeOnRead(t *testing.T, h Harness) {
	for _, n := range payloadSizes {
		t.Run(fmt.Sprintf("%dB", n), func(t *testing.T) {
			s := h.Open(t)
			j := mkJob(1, "q", job.StateReady, func(j *job.Job) { j.Payload = sizedPayload(1, n) })
			pending := mkJob(2, "q", job.StateDelayed, func(j *job.Job) { j.Payload = sizedPayload(2, n) })
			create(t, s, j)
			for _, payload := range []bool{false, true} {
				view(t, s, func(r store.ReadTx) { checkJob(t, r, j, payload) })
			}
			tx := s.Begin()
			defer tx.Discard()
			if err := tx.Create(pending); err != nil {
				t.Fatal(err)
			}
			for _, payload := range []bool{false, true} {
				checkJob(t, tx, j, payload)
				checkJob(t, tx, pending, payload)
			}
		})
	}
}

// testUpdateKeepsPayload: Update called with a job read without its payload
// (as the engine does) keeps the stored payload byte for byte, and Size,
// whether the job was read in the same Txn, in a View before it, or created
// in the same Txn; once the Txn knows the stored payload, a different one
// in next is ignored. A missing job is ErrNotFound.
func testUpdateKeepsPayload(t *testing.T, h Harness) {
	lease := func(j *job.Job) *job.Job {
		next := j.Clone()
		next.State, next.Attempt, next.LeaseID, next.LeaseExpires = job.StateLeased, j.Attempt+1, "l", sec(60)
		return next
	}
	requeue := func(j *job.Job, seq uint64) *job.Job {
		next := j.Clone()
		next.State, next.ReadySeq, next.LeaseID, next.LeaseExpires = job.StateReady, seq, "", time.Time{}
		return next
	}
	for _, n := range payloadSizes {
		t.Run(fmt.Sprintf("%dB", n), func(t *testing.T) {
			s := h.Open(t)
			// Job 1 is read in the Txn that updates it, job 2 in a View
			// before it; job 3 is created and updated in one Txn.
			var want []*job.Job
			for id := job.ID(1); id <= 3; id++ {
				want = append(want, mkJob(id, "q", job.StateReady, func(j *job.Job) { j.Payload = sizedPayload(id, n) }))
			}
			create(t, s, want[0], want[1])
			var viewed *job.Job
			view(t, s, func(r store.ReadTx) {
				var err error
				if viewed, err = r.Job(2, false); err != nil {
					t.Fatal(err)
				}
			})
			write(t, s, func(tx store.Txn) {
				read, err := tx.Job(1, false)
				if err != nil {
					t.Fatal(err)
				}
				if err := tx.Create(want[2]); err != nil {
					t.Fatal(err)
				}
				created, err := tx.Job(3, false)
				if err != nil {
					t.Fatal(err)
				}
				for i, prev := range []*job.Job{read, viewed, created} {
					next := lease(prev)
					if err := tx.Update(prev, next); err != nil {
						t.Fatalf("Update(%d): %v", prev.ID, err)
					}
					// Twice in one Txn, with a payload and size that are
					// not the job's: they must be ignored.
					again := requeue(next, uint64(100+i))
					again.Payload, again.Size = []byte("not the payload"), 15
					if err := tx.Update(next, again); err != nil {
						t.Fatalf("second Update(%d): %v", prev.ID, err)
					}
					again.Payload, again.Size = want[i].Payload, len(want[i].Payload)
					want[i] = again
					checkJob(t, tx, want[i], true)
				}
				// A job that does not exist has no payload to keep.
				ghost := mkJob(99, "q", job.StateReady)
				if err := tx.Update(ghost, lease(ghost)); !errors.Is(err, job.ErrNotFound) {
					t.Errorf("Update of a missing job: err = %v, want ErrNotFound", err)
				}
			})
			view(t, s, func(r store.ReadTx) {
				for _, j := range want {
					checkJob(t, r, j, true)
					checkJob(t, r, j, false)
				}
				checkIndexes(t, r, want...)
			})
		})
	}
}

// testUpdateCarriesPayload: the engine's in-memory copy of a job it
// created carries the whole payload; Update from it, in a Txn that never
// read the job, keeps payload and Size (a store may write them from next).
func testUpdateCarriesPayload(t *testing.T, h Harness) {
	for _, n := range payloadSizes {
		t.Run(fmt.Sprintf("%dB", n), func(t *testing.T) {
			s := h.Open(t)
			j := mkJob(1, "q", job.StateReady, func(j *job.Job) { j.Payload = sizedPayload(1, n) })
			create(t, s, j)
			prev := j.Clone()
			prev.Size = n
			next := prev.Clone()
			next.State, next.Attempt, next.LeaseID, next.LeaseExpires = job.StateLeased, 1, "l", sec(60)
			write(t, s, func(tx store.Txn) {
				if err := tx.Update(prev, next); err != nil {
					t.Fatalf("Update: %v", err)
				}
			})
			view(t, s, func(r store.ReadTx) {
				checkJob(t, r, next, true)
				checkJob(t, r, next, false)
				checkIndexes(t, r, next)
			})
		})
	}
}

// testDeleteBySize: Delete given only what the engine's lease table holds
// (ID, Queue, State, Size and the index fields) removes the job whatever its
// payload's size, and a job read without its payload can be deleted as read.
func testDeleteBySize(t *testing.T, h Harness) {
	for _, n := range payloadSizes {
		t.Run(fmt.Sprintf("%dB", n), func(t *testing.T) {
			s := h.Open(t)
			leased := mkJob(1, "q", job.StateLeased, func(j *job.Job) { j.Payload = sizedPayload(1, n) })
			ready := mkJob(2, "q", job.StateReady, withExpiry(sec(100)), func(j *job.Job) { j.Payload = sizedPayload(2, n) })
			bystander := mkJob(3, "q", job.StateReady, func(j *job.Job) { j.Payload = sizedPayload(3, n) })
			create(t, s, leased, ready, bystander)
			var read *job.Job
			view(t, s, func(r store.ReadTx) {
				var err error
				if read, err = r.Job(2, false); err != nil {
					t.Fatal(err)
				}
			})
			write(t, s, func(tx store.Txn) {
				del := &job.Job{ID: leased.ID, Queue: leased.Queue, State: leased.State, Size: n, LeaseExpires: leased.LeaseExpires}
				if err := tx.Delete(del); err != nil {
					t.Fatalf("Delete(leased): %v", err)
				}
				if err := tx.Delete(read); err != nil {
					t.Fatalf("Delete(read without payload): %v", err)
				}
			})
			view(t, s, func(r store.ReadTx) {
				for _, id := range []job.ID{1, 2} {
					for _, payload := range []bool{false, true} {
						if _, err := r.Job(id, payload); !errors.Is(err, job.ErrNotFound) {
							t.Errorf("Job(%d, %v) after Delete: err = %v, want ErrNotFound", id, payload, err)
						}
					}
				}
				checkJob(t, r, bystander, true)
				checkIndexes(t, r, bystander)
			})
		})
	}
}
