package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

// reader implements store.ReadTx over a Badger transaction: a read-only
// one for View, the write one for txn (Badger's reads and iterators in a
// write transaction include its pending writes).
type reader struct {
	b   *Badger
	txn *badger.Txn
}

// get returns a copy of key's value; found is false for a missing key.
func (r reader) get(key []byte) (val []byte, found bool, err error) {
	item, err := r.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	val, err = item.ValueCopy(nil)
	return val, err == nil, err
}

// Job sets Size always and Payload only when payload is true, even for an
// inline payload that came with the record (store.ReadTx).
func (r reader) Job(id job.ID, payload bool) (*job.Job, error) {
	j, _, err := r.job(id, payload)
	return j, err
}

// job reads a job and its record's payload section (see encodeRecord).
// A record that says ready or leased may be overlaid by the job's leased
// entry (doc.go, "Lease overlay"): one more Get.
func (r reader) job(id job.ID, payload bool) (j *job.Job, section []byte, err error) {
	defer r.b.recovered(&err, "read job")
	if r.b.closed.Load() {
		return nil, nil, ErrClosed
	}
	v, ok, err := r.get(metaKey(id))
	switch {
	case err != nil:
		return nil, nil, translate("read job "+id.String(), err)
	case !ok:
		return nil, nil, fmt.Errorf("job %s: %w", id, job.ErrNotFound)
	}
	if j, section, err = decodeRecord(v); err != nil {
		return nil, nil, fmt.Errorf("read job %s: %w", id, err)
	}
	if j.ID != id {
		return nil, nil, fmt.Errorf("read job %s: %w: record holds job %s", id, errBadRecord, j.ID)
	}
	if j.State == job.StateReady || j.State == job.StateLeased {
		if err := r.overlayLease(j); err != nil {
			return nil, nil, err
		}
	}
	switch {
	case !payload:
		j.Payload = nil
		return j, section, nil
	case j.Size <= inlinePayloadMax:
		return j, section, nil // decodeRecord set the inline payload
	}
	v, ok, err = r.get(payloadKey(id))
	switch {
	case err != nil:
		return nil, nil, translate("read payload "+id.String(), err)
	case !ok:
		return nil, nil, fmt.Errorf("read job %s: payload missing (store corrupt)", id)
	}
	if j.Payload, err = decodePayload(v); err != nil {
		return nil, nil, fmt.Errorf("read job %s: %w (store corrupt)", id, err)
	}
	if len(j.Payload) != j.Size {
		return nil, nil, fmt.Errorf("read job %s: %w: payload of %d bytes, record says %d (store corrupt)",
			id, errBadPayload, len(j.Payload), j.Size)
	}
	return j, section, nil
}

// overlayLease applies j's leased entry, if it has one, to j read from a
// record that says ready or leased: a lease that changed nothing else wrote
// only its index entries (Txn.Update's light path), so the entry holds the
// lease's State, Attempt, LeaseID and LeaseExpires and the record may not.
// Every other way out of leased rewrites the record and deletes the entry,
// so a ready record with a leased entry is a job leased by the light path.
func (r reader) overlayLease(j *job.Job) error {
	v, ok, err := r.get(leasedKey(j.ID))
	switch {
	case err != nil:
		return translate("read job "+j.ID.String(), err)
	case !ok:
		return nil
	}
	l, q, err := decodeLeasedValue(v)
	if err != nil {
		return fmt.Errorf("read job %s: leased index: %w", j.ID, err)
	}
	if string(q) != j.Queue {
		return fmt.Errorf("read job %s: leased index names queue %q, record %q (store corrupt)", j.ID, q, j.Queue)
	}
	j.State, j.Attempt, j.LeaseID, j.LeaseExpires = job.StateLeased, l.attempt, l.id, fromNanos(l.expires)
	return nil
}

// iterate walks the keys with prefix from start, calling fn for each until
// it returns false or an error. Values are not prefetched: fn reads one with
// item.Value only where it needs it (they are inline in the LSM).
func (r reader) iterate(prefix, start []byte, fn func(item *badger.Item) (bool, error)) error {
	it := r.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	for it.Seek(start); it.Valid(); it.Next() {
		more, err := fn(it.Item())
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// collectRef completes ref from item's value with fill and appends it to
// refs; it answers whether fewer than max are collected. An error names
// the index and the key.
func collectRef(refs *[]store.Ref, max int, index string, item *badger.Item, ref store.Ref, fill func(v []byte, ref *store.Ref) error) (bool, error) {
	if err := item.Value(func(v []byte) error { return fill(v, &ref) }); err != nil {
		return false, fmt.Errorf("%s index %x: %w", index, item.Key(), err)
	}
	*refs = append(*refs, ref)
	return len(*refs) < max, nil
}

func (r reader) Ready(queue string, after uint64, max int) (refs []store.Ref, err error) {
	defer r.b.recovered(&err, "read ready index")
	err = r.seqIndex(prefixReady, "ready", queue, after, max, func(item *badger.Item, seq uint64) (bool, error) {
		return collectRef(&refs, max, "ready", item, store.Ref{Queue: queue, Seq: seq}, func(v []byte, ref *store.Ref) error {
			id, at, err := decodeReadyValue(v)
			ref.ID, ref.At = id, fromNanos(at)
			return err
		})
	})
	return refs, err
}

func (r reader) GroupReady(queue string, from store.Ref, max int) (refs []store.Ref, err error) {
	defer r.b.recovered(&err, "read group-ready index")
	if r.b.closed.Load() {
		return nil, ErrClosed
	}
	prefix, err := queuePrefix(prefixGroup, queue)
	if err != nil || max <= 0 {
		return nil, err
	}
	start := prefix
	if from.Group != "" {
		seq, ok := nextSeq(from.Seq)
		if start, err = groupKey(queue, from.Group, seq); err != nil {
			return nil, err
		}
		if !ok { // past the group's last possible entry: the next group
			start = append(start[:len(start)-9], 1)
		}
	}
	err = r.iterate(prefix, start, func(item *badger.Item) (bool, error) {
		g, seq, err := decodeGroupKey(item.Key()[len(prefix):])
		if err != nil {
			return false, fmt.Errorf("group-ready index %x: %w", item.Key(), err)
		}
		return collectRef(&refs, max, "group-ready", item, store.Ref{Queue: queue, Group: string(g), Seq: seq}, func(v []byte, ref *store.Ref) error {
			id, at, err := decodeReadyValue(v)
			ref.ID, ref.At = id, fromNanos(at)
			return err
		})
	})
	if err != nil {
		return nil, translate("read group-ready index", err)
	}
	return refs, nil
}

// seqIndex walks queue's entries of a per-queue index keyed by sequence
// (ready, dead) from after+1, calling fn with each entry's sequence until
// it returns false, at most max entries wanted. It seeks straight to
// after+1: the engine's cursor keeps reads off the tombstones of consumed
// entries at the start of the prefix.
func (r reader) seqIndex(kind byte, index, queue string, after uint64, max int, fn func(item *badger.Item, seq uint64) (bool, error)) error {
	if r.b.closed.Load() {
		return ErrClosed
	}
	prefix, err := queuePrefix(kind, queue)
	if err != nil {
		return err
	}
	first, ok := nextSeq(after)
	if !ok || max <= 0 {
		return nil
	}
	start := binary.BigEndian.AppendUint64(bytes.Clone(prefix), first)
	err = r.iterate(prefix, start, func(item *badger.Item) (bool, error) {
		k := item.Key()
		if len(k) != len(prefix)+8 {
			return false, fmt.Errorf("%s index: %w %x", index, errBadKey, k)
		}
		return fn(item, binary.BigEndian.Uint64(k[len(prefix):]))
	})
	if err != nil {
		return translate("read "+index+" index", err)
	}
	return nil
}

func (r reader) Due(kind store.TimedIndex, from store.Ref, until time.Time, max int) (refs []store.Ref, next time.Time, err error) {
	defer r.b.recovered(&err, "read timed index")
	if r.b.closed.Load() {
		return nil, time.Time{}, ErrClosed
	}
	var prefix byte
	switch kind {
	case store.IndexDelayed:
		prefix = prefixDelayed
	case store.IndexExpiry:
		prefix = prefixExpiry
	case store.IndexDone:
		prefix = prefixDone
	default:
		return nil, time.Time{}, fmt.Errorf("%w: timed index %d", job.ErrInvalidArgument, kind)
	}
	start := []byte{prefix}
	fromSet := from.ID != 0 || !from.At.IsZero()
	if fromSet {
		start = timedKey(prefix, nanos(from.At), from.ID)
	}
	err = r.iterate([]byte{prefix}, start, func(item *badger.Item) (bool, error) {
		k := item.Key()
		if fromSet && bytes.Equal(k, start) {
			return true, nil // from is exclusive
		}
		n, id, err := decodeTimedKey(prefix, k)
		if err != nil {
			return false, fmt.Errorf("timed index %x: %w", k, err)
		}
		at := fromNanos(n)
		if len(refs) >= max || at.After(until) {
			next = at
			return false, nil
		}
		ref := store.Ref{ID: id, At: at}
		if err := item.Value(func(v []byte) error {
			if prefix == prefixDelayed {
				q, g, seq, err := decodeDelayedValue(v)
				ref.Queue, ref.Group, ref.Seq = string(q), string(g), seq
				return err
			}
			if err := checkValueQueue(v); err != nil {
				return err
			}
			ref.Queue = string(v)
			return nil
		}); err != nil {
			return false, fmt.Errorf("timed index %x: %w", k, err)
		}
		refs = append(refs, ref)
		return true, nil
	})
	if err != nil {
		return nil, time.Time{}, translate("read timed index", err)
	}
	return refs, next, nil
}

func (r reader) Dead(queue string, after job.ID, max int) (ids []job.ID, err error) {
	defer r.b.recovered(&err, "read dead index")
	err = r.seqIndex(prefixDead, "dead", queue, uint64(after), max, func(_ *badger.Item, seq uint64) (bool, error) {
		ids = append(ids, job.ID(seq))
		return len(ids) < max, nil
	})
	return ids, err
}

func (r reader) Leased(after job.ID, max int) (refs []store.Ref, err error) {
	defer r.b.recovered(&err, "read leased index")
	if r.b.closed.Load() {
		return nil, ErrClosed
	}
	first, ok := nextSeq(uint64(after))
	if !ok || max <= 0 {
		return nil, nil
	}
	err = r.iterate([]byte{prefixLeased}, leasedKey(job.ID(first)), func(item *badger.Item) (bool, error) {
		k := item.Key()
		id, err := decodeIDKey(prefixLeased, k)
		if err != nil {
			return false, fmt.Errorf("leased index %x: %w", k, err)
		}
		return collectRef(&refs, max, "leased", item, store.Ref{ID: id}, func(v []byte, ref *store.Ref) error {
			at, _, _, q, err := splitLeasedValue(v)
			ref.At, ref.Queue = fromNanos(at), string(q)
			return err
		})
	})
	if err != nil {
		return nil, translate("read leased index", err)
	}
	return refs, nil
}

func (r reader) Dedupe(queue, key string) (id job.ID, ok bool, err error) {
	defer r.b.recovered(&err, "read dedupe key")
	if r.b.closed.Load() {
		return 0, false, ErrClosed
	}
	k, err := dedupeKey(queue, key)
	if err != nil {
		return 0, false, err
	}
	v, ok, err := r.get(k)
	if err != nil || !ok {
		return 0, false, translate("read dedupe key", err)
	}
	if id, err = decodeIDValue(v); err != nil {
		return 0, false, fmt.Errorf("dedupe key of queue %s: %w", queue, err)
	}
	return id, true, nil
}

func (r reader) Seq() (seq uint64, err error) {
	defer r.b.recovered(&err, "read sequence")
	if r.b.closed.Load() {
		return 0, ErrClosed
	}
	v, ok, err := r.get(seqKey)
	if err != nil || !ok {
		return 0, translate("read sequence", err)
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("read sequence: %w: %d bytes", errBadValue, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// snapshot is a read-only transaction over committed data, opened at the
// first index read (nothing else commits while the single write transaction
// is open, so it sees what the write transaction saw at its start).
func (t *txn) snapshot() reader {
	if t.snap == nil {
		t.snap = t.b.db.NewTransaction(false)
	}
	return reader{b: t.b, txn: t.snap}
}

func (t *txn) closeSnapshot() {
	if t.snap != nil {
		t.snap.Discard()
		t.snap = nil
	}
}

// Ready reads committed data (see store.Txn).
func (t *txn) Ready(queue string, after uint64, max int) ([]store.Ref, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return t.snapshot().Ready(queue, after, max)
}

// GroupReady reads committed data (see store.Txn).
func (t *txn) GroupReady(queue string, from store.Ref, max int) ([]store.Ref, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return t.snapshot().GroupReady(queue, from, max)
}

// Due reads committed data (see store.Txn).
func (t *txn) Due(kind store.TimedIndex, from store.Ref, until time.Time, max int) ([]store.Ref, time.Time, error) {
	if err := t.check(); err != nil {
		return nil, time.Time{}, err
	}
	return t.snapshot().Due(kind, from, until, max)
}

// Dead reads committed data (see store.Txn).
func (t *txn) Dead(queue string, after job.ID, max int) ([]job.ID, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return t.snapshot().Dead(queue, after, max)
}

// Leased reads committed data (see store.Txn).
func (t *txn) Leased(after job.ID, max int) ([]store.Ref, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return t.snapshot().Leased(after, max)
}

// Counts reads committed data (see store.Txn).
func (t *txn) Counts(bytesOf func(queue string) bool) (map[string]store.Counts, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return t.snapshot().Counts(bytesOf)
}
