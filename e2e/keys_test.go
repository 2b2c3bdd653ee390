package e2e

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/storage"
)

// TestAckLeavesNoKeys runs jobs with payloads kept inside the record and
// with payloads under their own key (storage/doc.go) through the engine on
// Badger: enqueue, lease, nack, lease again, ack. Afterwards the store
// holds no key of any job: the ack path tells the store where each
// payload lives, and nothing is orphaned.
func TestAckLeavesNoKeys(t *testing.T) {
	dir := t.TempDir()
	st, err := storage.Open(storage.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.Config{}, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	sizes := []int{0, 10, 512, 513, 4 << 10, 64 << 10}
	for i, n := range sizes {
		p := bytes.Repeat([]byte{byte('a' + i)}, n)
		if _, err := e.Enqueue(ctx, job.New{Queue: "k", Payload: p}); err != nil {
			t.Fatal(err)
		}
	}
	lease := func() []*job.Job {
		jobs, err := e.Lease(ctx, engine.LeaseRequest{Queue: "k", Max: len(sizes), TTR: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != len(sizes) {
			t.Fatalf("leased %d jobs, want %d", len(jobs), len(sizes))
		}
		for i, j := range jobs {
			if len(j.Payload) != sizes[i] || (len(j.Payload) > 0 && j.Payload[0] != byte('a'+i)) {
				t.Fatalf("job %d: payload of %d bytes, want %d of %q", i, len(j.Payload), sizes[i], rune('a'+i))
			}
		}
		return jobs
	}
	for _, j := range lease() {
		if _, err := e.Nack(ctx, j.ID, j.LeaseID, time.Nanosecond, "again"); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond) // the retry delay is over
	for _, j := range lease() {
		if err := e.Ack(ctx, j.ID, j.LeaseID, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil).WithReadOnly(true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var left []string
	err = db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if k[0] != 0x09 { // the sequence high-water mark
				left = append(left, fmt.Sprintf("%x", k))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("keys left after every job was acked: %v", left)
	}
}
