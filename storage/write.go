package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgeq/edgeq/engine/job"
)

// txn implements store.Txn over one Badger write transaction.
type txn struct {
	reader
	snap        *badger.Txn // read-only, for index reads: committed data only (see store.Txn)
	count, size int64       // Badger's estimate of the transaction, mirrored
	written     int64       // bytes of keys and values written, for the space account
	garbage     int64       // bytes the writes made garbage (deleted jobs), for reclaim
	seq         uint64
	seqSet      bool
	done        bool
	// sections holds the payload section of each record this transaction
	// read or wrote, so that Update rewrites a record without reading it
	// again (the engine reads a job, then updates it).
	sections map[job.ID][]byte
}

// remember keeps a record's payload section for Update.
func (t *txn) remember(id job.ID, section []byte) {
	if t.sections == nil {
		t.sections = make(map[job.ID][]byte)
	}
	t.sections[id] = section
}

// Job reads through the transaction and remembers the record's payload
// section for Update.
func (t *txn) Job(id job.ID, payload bool) (*job.Job, error) {
	j, section, err := t.job(id, payload)
	if err != nil {
		return nil, err
	}
	t.remember(id, section)
	return j, nil
}

// write is one set or delete of an operation.
type write struct {
	key, val []byte
	del      bool
	ttl      time.Duration
}

// apply issues the writes of one operation. It first checks them against
// Badger's limits (fits), so that an operation that does not fit fails
// whole instead of half-way.
func (t *txn) apply(op string, ws ...write) error {
	if err := t.fits(op, ws); err != nil {
		return err
	}
	for _, w := range ws {
		var err error
		if w.del {
			err = t.txn.Delete(w.key)
		} else {
			e := badger.NewEntry(w.key, w.val)
			if w.ttl > 0 {
				e = e.WithTTL(w.ttl)
			}
			err = t.txn.SetEntry(e)
		}
		if err != nil {
			return translate(op, err)
		}
		t.count++
		t.size += t.cost(w)
		t.written += int64(len(w.key)+len(w.val)) + entryOverhead
	}
	return nil
}

func (t *txn) check() error {
	switch {
	case t.b.closed.Load():
		return ErrClosed
	case t.done:
		return errors.New("transaction already committed or discarded")
	}
	return nil
}

// indexEntry is one index key and its value.
type indexEntry struct{ key, val []byte }

// indexEntries returns the index entries of j by the rules of store.Store.
func indexEntries(j *job.Job) ([]indexEntry, error) {
	var out []indexEntry
	switch j.State {
	case job.StateReady:
		k, err := readyKey(j.Queue, j.ReadySeq)
		if j.Group != "" {
			k, err = groupKey(j.Queue, j.Group, j.ReadySeq)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, indexEntry{k, readyValue(j.ID, nanos(j.RunAt))})
	case job.StateDelayed:
		if err := checkKeyQueue(j.Queue); err != nil {
			return nil, err
		}
		if j.Group != "" {
			if err := checkKeyGroup(j.Group); err != nil {
				return nil, err
			}
		}
		out = append(out, indexEntry{timedKey(prefixDelayed, nanos(j.RunAt), j.ID), delayedValue(j)})
	case job.StateLeased:
		if err := checkKeyQueue(j.Queue); err != nil {
			return nil, err
		}
		out = append(out, indexEntry{leasedKey(j.ID), leasedValue(leaseOf(j), j.Queue)})
	case job.StateDead:
		k, err := deadKey(j.Queue, j.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, indexEntry{k, []byte{}})
	case job.StateDone:
		if err := checkKeyQueue(j.Queue); err != nil {
			return nil, err
		}
		out = append(out, indexEntry{timedKey(prefixDone, nanos(j.ExpiresAt), j.ID), []byte(j.Queue)})
	default:
		return nil, fmt.Errorf("%w: job %s: state %s cannot be stored", job.ErrInvalidArgument, j.ID, j.State)
	}
	if (j.State == job.StateReady || j.State == job.StateDelayed) && !j.ExpiresAt.IsZero() {
		out = append(out, indexEntry{timedKey(prefixExpiry, nanos(j.ExpiresAt), j.ID), []byte(j.Queue)})
	}
	return out, nil
}

func (t *txn) Create(j *job.Job) (err error) {
	defer t.b.recovered(&err, "create job")
	if err := t.check(); err != nil {
		return err
	}
	if j.ID == 0 {
		return fmt.Errorf("%w: create job: id 0", job.ErrInvalidArgument)
	}
	idx, err := indexEntries(j)
	if err != nil {
		return err
	}
	ws := make([]write, 0, 2+len(idx))
	if len(j.Payload) > inlinePayloadMax {
		payload := encodePayload(j.Payload)
		if t.b.cfg.InMemory && int64(len(payload)) >= t.b.valueThreshold {
			// Badger in memory mode fails on such a value in its write goroutine.
			return fmt.Errorf("%w: create job %s: %d bytes: an in-memory store holds payloads below %d bytes",
				job.ErrTooLarge, j.ID, len(j.Payload), t.b.valueThreshold-payloadFrame)
		}
		ws = append(ws, write{key: payloadKey(j.ID), val: payload})
	}
	section := payloadSection(j.Payload)
	rec := encodeRecord(j, section)
	ws = append(ws, write{key: metaKey(j.ID), val: rec})
	for _, e := range idx {
		ws = append(ws, write{key: e.key, val: e.val})
	}
	if err := t.apply("create job "+j.ID.String(), ws...); err != nil {
		return err
	}
	t.remember(j.ID, rec[len(rec)-len(section):]) // shares the record Badger holds anyway
	return nil
}

// storedSection returns the payload section of next's record as this
// transaction last read or wrote it; else, when next carries its whole
// non-empty payload, the section built from it (the engine's in-memory copy
// of a job it created: no read); else it reads the record.
func (t *txn) storedSection(next *job.Job) ([]byte, error) {
	id := next.ID
	if s, ok := t.sections[id]; ok {
		return s, nil
	}
	if next.Size > 0 && len(next.Payload) == next.Size {
		return payloadSection(next.Payload), nil
	}
	v, ok, err := t.get(metaKey(id))
	switch {
	case err != nil:
		return nil, translate("update job "+id.String(), err)
	case !ok:
		return nil, fmt.Errorf("update job %s: %w", id, job.ErrNotFound)
	}
	_, section, err := decodeRecord(v)
	if err != nil {
		return nil, fmt.Errorf("update job %s: %w", id, err)
	}
	return section, nil
}

func (t *txn) Update(prev, next *job.Job) (err error) {
	defer t.b.recovered(&err, "update job")
	if err := t.check(); err != nil {
		return err
	}
	if prev.ID != next.ID {
		return fmt.Errorf("%w: update job %s with job %s", job.ErrInvalidArgument, prev.ID, next.ID)
	}
	old, err := indexEntries(prev)
	if err != nil {
		return err
	}
	idx, err := indexEntries(next)
	if err != nil {
		return err
	}
	// The payload stays as stored (the engine often passes a job read
	// without its payload; see storedSection).
	section, err := t.storedSection(next)
	if err != nil {
		return err
	}
	ws := make([]write, 0, 1+len(old)+len(idx))
	if !leaseOnly(prev, next) {
		ws = append(ws, write{key: metaKey(next.ID), val: encodeRecord(next, section)})
	}
	for _, o := range old {
		if !containsKey(idx, o.key) {
			ws = append(ws, write{key: o.key, del: true})
		}
	}
	for _, e := range idx {
		if !unchanged(old, e) {
			ws = append(ws, write{key: e.key, val: e.val})
		}
	}
	if err := t.apply("update job "+next.ID.String(), ws...); err != nil {
		return err
	}
	t.remember(next.ID, section)
	return nil
}

// leaseOnly reports whether Update may take the light path: next is a lease
// (or an extended one) of prev that changes nothing but State, Attempt,
// LeaseID and LeaseExpires, which the leased entry carries. Then only the
// index entries are written, not the record with its inline payload
// (doc.go, "Lease overlay"). Payload and Size are not compared: Update
// never writes them from next.
func leaseOnly(prev, next *job.Job) bool {
	return next.State == job.StateLeased &&
		(prev.State == job.StateReady || prev.State == job.StateLeased) &&
		next.ID == prev.ID &&
		next.Queue == prev.Queue &&
		next.MaxAttempts == prev.MaxAttempts &&
		nanos(next.CreatedAt) == nanos(prev.CreatedAt) &&
		nanos(next.RunAt) == nanos(prev.RunAt) &&
		nanos(next.ExpiresAt) == nanos(prev.ExpiresAt) &&
		next.TTR == prev.TTR &&
		next.Key == prev.Key &&
		maps.Equal(next.Headers, prev.Headers) &&
		next.ContentType == prev.ContentType &&
		next.LastError == prev.LastError &&
		next.Group == prev.Group &&
		next.ReadySeq == prev.ReadySeq &&
		bytes.Equal(next.Result, prev.Result) &&
		next.ResultTruncated == prev.ResultTruncated &&
		next.TraceParent == prev.TraceParent &&
		next.TraceState == prev.TraceState
}

func containsKey(es []indexEntry, key []byte) bool {
	for _, e := range es {
		if bytes.Equal(e.key, key) {
			return true
		}
	}
	return false
}

func unchanged(es []indexEntry, e indexEntry) bool {
	for _, o := range es {
		if bytes.Equal(o.key, e.key) && bytes.Equal(o.val, e.val) {
			return true
		}
	}
	return false
}

func (t *txn) Delete(j *job.Job) (err error) {
	defer t.b.recovered(&err, "delete job")
	if err := t.check(); err != nil {
		return err
	}
	idx, err := indexEntries(j)
	if err != nil {
		return err
	}
	ws := make([]write, 0, 2+len(idx))
	// Size says whether the payload has its own key (store.Txn: Delete
	// reads Size). A caller that passes the payload instead is believed too.
	if max(j.Size, len(j.Payload)) > inlinePayloadMax {
		ws = append(ws, write{key: payloadKey(j.ID), del: true})
	}
	ws = append(ws, write{key: metaKey(j.ID), del: true})
	for _, e := range idx {
		ws = append(ws, write{key: e.key, del: true})
	}
	if err := t.apply("delete job "+j.ID.String(), ws...); err != nil {
		return err
	}
	t.garbage += int64(max(j.Size, len(j.Payload))) + deletedJobOverhead
	delete(t.sections, j.ID)
	return nil
}

// PutDedupe writes the key with a Badger TTL. Badger stores expiry in whole
// seconds, rounded down; ttl is rounded up instead, so that the key lives
// at least ttl (and less than ttl+1s). A ttl of zero or less stores nothing.
func (t *txn) PutDedupe(queue, key string, id job.ID, ttl time.Duration) (err error) {
	defer t.b.recovered(&err, "write dedupe key")
	if err := t.check(); err != nil {
		return err
	}
	k, err := dedupeKey(queue, key)
	if err != nil || ttl <= 0 {
		return err
	}
	return t.apply("write dedupe key", write{key: k, val: idValue(id), ttl: ttl + time.Second - time.Nanosecond})
}

func (t *txn) SetSeq(seq uint64) (err error) {
	defer t.b.recovered(&err, "write sequence")
	if err := t.check(); err != nil {
		return err
	}
	if err := t.apply("write sequence", write{key: seqKey, val: binary.BigEndian.AppendUint64(nil, seq)}); err != nil {
		return err
	}
	t.seq, t.seqSet = seq, true
	return nil
}

// Commit commits; badger.ErrTxnTooBig comes back wrapped (a caller that
// respects Fits never sees it).
func (t *txn) Commit() (err error) {
	defer t.b.recovered(&err, "commit")
	if err := t.check(); err != nil {
		return err
	}
	t.done = true
	t.closeSnapshot()
	defer t.settle()
	t.b.writeMu.RLock()
	err = t.txn.Commit()
	t.b.writeMu.RUnlock()
	if err != nil {
		return translate("commit", err)
	}
	t.b.garbage.Add(t.garbage)
	if t.seqSet {
		t.b.committedSeq.Store(t.seq)
	}
	return nil
}

func (t *txn) Discard() {
	if !t.done {
		t.done = true
		t.closeSnapshot()
		t.txn.Discard()
		t.settle()
	}
}

// settle takes what the transaction wrote off the bytes admission holds
// pending: committed, they are in Badger's files; discarded or failed,
// their callers are refused.
func (t *txn) settle() {
	if t.b.space != nil {
		t.b.space.committed(t.written)
	}
}
