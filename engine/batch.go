package engine

import (
	"fmt"
	"time"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

// batch is one round of the committer: one or more transactions (a new one
// when the current is full), then at most one sync.
type batch struct {
	txn        store.Txn
	gen        uint64    // numbers txn: transactions begun by the engine count from 1
	writes     int       // ops that wrote into txn
	payload    int       // payload bytes written into txn: the store holds them in memory until Commit
	now        time.Time // of the latest round of ops applied
	start      time.Time // of the first
	ops        []*op     // applied so far
	maintained bool      // maintenance ran in this batch
	needSync   bool
	wake       map[*queue]struct{}
	events     []Event
}

// commitTxn commits the current transaction with the sequence mark.
func (e *Engine) commitTxn(b *batch) error {
	if e.c.seq != e.c.seqSet {
		if err := b.txn.SetSeq(e.c.seq); err != nil {
			return fmt.Errorf("set seq: %w", err)
		}
	}
	if err := b.txn.Commit(); err != nil {
		return err
	}
	e.c.seqSet = e.c.seq
	return nil
}

// fits makes sure the writes of op fit, committing the current transaction
// early and starting another when they do not. It reports false when they
// do not fit even an empty transaction.
func (e *Engine) fits(b *batch, op store.Op) (bool, error) {
	if b.txn.Fits(op) {
		return true, nil
	}
	if b.writes == 0 {
		return false, nil
	}
	if err := e.rotate(b); err != nil {
		return false, err
	}
	return b.txn.Fits(op), nil
}

// rotate commits the current transaction early and starts another.
func (e *Engine) rotate(b *batch) error {
	if err := e.commitTxn(b); err != nil {
		return err
	}
	b.txn, b.writes, b.payload = e.store.Begin(), 0, 0
	b.gen = e.c.nextTxn()
	return nil
}

// stepFits makes room for one state change to j (an Update to it or its
// Delete); it never reports false: one always fits an empty transaction.
func (e *Engine) stepFits(b *batch, j *job.Job) error {
	_, err := e.fits(b, store.Op{Change: j})
	return err
}

// nextTxn numbers a transaction the committer begins.
func (c *committer) nextTxn() uint64 {
	c.txns++
	return c.txns
}

func (b *batch) wakeQueue(q *queue) {
	if b.wake == nil {
		b.wake = make(map[*queue]struct{})
	}
	b.wake[q] = struct{}{}
}

func (b *batch) wrote(q *queue) {
	b.writes++
	if q.conf().Sync == SyncAlways {
		b.needSync = true
	}
}
