package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
)

// reader implements engine.ReadTx over a Badger transaction: a read-only
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
// inline payload that came with the record (engine.ReadTx).
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

func (r reader) Ready(queue string, after uint64, max int) (refs []engine.Ref, err error) {
	defer r.b.recovered(&err, "read ready index")
	if r.b.closed.Load() {
		return nil, ErrClosed
	}
	prefix, err := queuePrefix(prefixReady, queue)
	if err != nil {
		return nil, err
	}
	first, ok := nextSeq(after)
	if !ok || max <= 0 {
		return nil, nil
	}
	// Seek straight to after+1: the engine's cursor keeps reads off the
	// tombstones of consumed entries at the start of the prefix.
	start := binary.BigEndian.AppendUint64(bytes.Clone(prefix), first)
	err = r.iterate(prefix, start, func(item *badger.Item) (bool, error) {
		k := item.Key()
		if len(k) != len(prefix)+8 {
			return false, fmt.Errorf("ready index: %w %x", errBadKey, k)
		}
		ref := engine.Ref{Queue: queue, Seq: binary.BigEndian.Uint64(k[len(prefix):])}
		if err := item.Value(func(v []byte) error {
			id, at, err := decodeReadyValue(v)
			ref.ID, ref.At = id, fromNanos(at)
			return err
		}); err != nil {
			return false, fmt.Errorf("ready index %x: %w", k, err)
		}
		refs = append(refs, ref)
		return len(refs) < max, nil
	})
	if err != nil {
		return nil, translate("read ready index", err)
	}
	return refs, nil
}

func (r reader) Due(kind engine.TimedIndex, from engine.Ref, until time.Time, max int) (refs []engine.Ref, next time.Time, err error) {
	defer r.b.recovered(&err, "read timed index")
	if r.b.closed.Load() {
		return nil, time.Time{}, ErrClosed
	}
	var prefix byte
	switch kind {
	case engine.IndexDelayed:
		prefix = prefixDelayed
	case engine.IndexExpiry:
		prefix = prefixExpiry
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
		ref := engine.Ref{ID: id, At: at}
		if err := item.Value(func(v []byte) error {
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
	if r.b.closed.Load() {
		return nil, ErrClosed
	}
	prefix, err := queuePrefix(prefixDead, queue)
	if err != nil {
		return nil, err
	}
	first, ok := nextSeq(uint64(after))
	if !ok || max <= 0 {
		return nil, nil
	}
	start := binary.BigEndian.AppendUint64(bytes.Clone(prefix), first)
	err = r.iterate(prefix, start, func(item *badger.Item) (bool, error) {
		k := item.Key()
		if len(k) != len(prefix)+8 {
			return false, fmt.Errorf("dead index: %w %x", errBadKey, k)
		}
		ids = append(ids, job.ID(binary.BigEndian.Uint64(k[len(prefix):])))
		return len(ids) < max, nil
	})
	if err != nil {
		return nil, translate("read dead index", err)
	}
	return ids, nil
}

func (r reader) Leased(after job.ID, max int) (refs []engine.Ref, err error) {
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
		ref := engine.Ref{ID: id}
		if err := item.Value(func(v []byte) error {
			at, _, _, q, err := splitLeasedValue(v)
			ref.At, ref.Queue = fromNanos(at), string(q)
			return err
		}); err != nil {
			return false, fmt.Errorf("leased index %x: %w", k, err)
		}
		refs = append(refs, ref)
		return len(refs) < max, nil
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

func (r reader) Counts() (counts map[string]engine.Counts, err error) {
	defer r.b.recovered(&err, "count indexes")
	if r.b.closed.Load() {
		return nil, ErrClosed
	}
	m := make(map[string]*engine.Counts)
	at := func(q []byte) *engine.Counts {
		c := m[string(q)] // no allocation for the lookup
		if c == nil {
			c = &engine.Counts{}
			m[string(q)] = c
		}
		return c
	}
	// Ready and dead: the queue is in the key.
	for _, p := range []byte{prefixReady, prefixDead} {
		err := r.iterate([]byte{p}, []byte{p}, func(item *badger.Item) (bool, error) {
			k := item.Key()
			i := bytes.IndexByte(k, 0)
			if i < 2 || len(k) != i+9 {
				return false, fmt.Errorf("index %x: %w", k, errBadKey)
			}
			c := at(k[1:i])
			if p == prefixReady {
				c.Ready++
			} else {
				c.Dead++
			}
			return true, nil
		})
		if err != nil {
			return nil, translate("count indexes", err)
		}
	}
	// Delayed and leased: the queue is in the value.
	for _, p := range []byte{prefixDelayed, prefixLeased} {
		err := r.iterate([]byte{p}, []byte{p}, func(item *badger.Item) (bool, error) {
			return true, item.Value(func(v []byte) error {
				if p == prefixDelayed {
					if err := checkValueQueue(v); err != nil {
						return fmt.Errorf("delayed index %x: %w", item.Key(), err)
					}
					at(v).Delayed++
					return nil
				}
				_, _, _, q, err := splitLeasedValue(v)
				if err != nil {
					return fmt.Errorf("leased index %x: %w", item.Key(), err)
				}
				at(q).Leased++
				return nil
			})
		})
		if err != nil {
			return nil, translate("count indexes", err)
		}
	}
	counts = make(map[string]engine.Counts, len(m))
	for q, c := range m {
		counts[q] = *c
	}
	return counts, nil
}

// Badger's accounting of a transaction's size (txn.go, checkSize): a new
// transaction starts at one entry and len("!badger!txn")+10 bytes; each
// write adds one entry and its key, 2 meta bytes, 10 version bytes and
// either the value (below ValueThreshold) or a 12-byte value pointer.
const (
	txnBaseSize   = int64(len("!badger!txn") + 10)
	entryOverhead = 2 + 10
	valuePointer  = 12
	// roomPercent is the share of Badger's limits that Room hands out.
	roomPercent = 80
	// roomKeyBytes is what Room adds to the caller's byte count for each
	// write: Badger's fixed overhead and 20 bytes of key. The caller counts
	// values, queue names and idempotency keys (the engine adds 256 bytes a
	// job for keys and the record's fixed part); the 20% margin absorbs
	// what an estimate misses, and apply refuses an operation that would
	// still not fit before writing any of it.
	roomKeyBytes = 20 + entryOverhead
)

// txn implements engine.Txn over one Badger write transaction.
type txn struct {
	reader
	snap        *badger.Txn // read-only, for index reads: committed data only (see engine.Txn)
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

// Room answers against 80% of db.MaxBatchCount and db.MaxBatchSize. Of
// bytes it assumes the worst split: each value below ValueThreshold counts
// whole, one at or above it only as a pointer, so entries writes cost at
// most min(bytes, entries*(ValueThreshold-1)) plus roomKeyBytes each.
func (t *txn) Room(entries int, bytes int) bool {
	e, n := int64(max(entries, 0)), int64(max(bytes, 0))
	cost := min(n, e*(t.b.valueThreshold-1)) + e*roomKeyBytes
	return t.count+e <= t.b.roomCount && t.size+cost <= t.b.roomSize
}

// write is one set or delete of an operation.
type write struct {
	key, val []byte
	del      bool
	ttl      time.Duration
}

// cost is Badger's estimate of w (txn.go, checkSize).
func (t *txn) cost(w write) int64 {
	v := int64(len(w.val))
	if v >= t.b.valueThreshold {
		v = valuePointer
	}
	return int64(len(w.key)) + v + entryOverhead
}

// apply issues the writes of one operation. It first checks them against
// Badger's limits, so that an operation that does not fit fails whole
// (wrapping badger.ErrTxnTooBig) instead of half-way.
func (t *txn) apply(op string, ws ...write) error {
	size := t.size
	for _, w := range ws {
		size += t.cost(w)
	}
	if t.count+int64(len(ws)) >= t.b.db.MaxBatchCount() || size >= t.b.db.MaxBatchSize() {
		return fmt.Errorf("%s: %w (%d entries, %d bytes; Room was not asked or was wrong)",
			op, badger.ErrTxnTooBig, t.count+int64(len(ws)), size)
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

// indexEntries returns the index entries of j by the rules of engine.Store.
func indexEntries(j *job.Job) ([]indexEntry, error) {
	var out []indexEntry
	switch j.State {
	case job.StateReady:
		k, err := readyKey(j.Queue, j.ReadySeq)
		if err != nil {
			return nil, err
		}
		out = append(out, indexEntry{k, readyValue(j.ID, nanos(j.RunAt))})
	case job.StateDelayed:
		if err := checkKeyQueue(j.Queue); err != nil {
			return nil, err
		}
		out = append(out, indexEntry{timedKey(prefixDelayed, nanos(j.RunAt), j.ID), []byte(j.Queue)})
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
		next.ReadySeq == prev.ReadySeq
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
	// Size says whether the payload has its own key (engine.Txn: Delete
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
// respects Room never sees it).
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

// Ready reads committed data (see engine.Txn).
func (t *txn) Ready(queue string, after uint64, max int) ([]engine.Ref, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return t.snapshot().Ready(queue, after, max)
}

// Due reads committed data (see engine.Txn).
func (t *txn) Due(kind engine.TimedIndex, from engine.Ref, until time.Time, max int) ([]engine.Ref, time.Time, error) {
	if err := t.check(); err != nil {
		return nil, time.Time{}, err
	}
	return t.snapshot().Due(kind, from, until, max)
}

// Dead reads committed data (see engine.Txn).
func (t *txn) Dead(queue string, after job.ID, max int) ([]job.ID, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return t.snapshot().Dead(queue, after, max)
}

// Leased reads committed data (see engine.Txn).
func (t *txn) Leased(after job.ID, max int) ([]engine.Ref, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return t.snapshot().Leased(after, max)
}

// Counts reads committed data (see engine.Txn).
func (t *txn) Counts() (map[string]engine.Counts, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	return t.snapshot().Counts()
}
