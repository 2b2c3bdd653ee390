package storage

import (
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

// Badger's accounting of a transaction's size (txn.go, checkSize): a new
// transaction starts at one entry and len("!badger!txn")+10 bytes; each
// write adds one entry and its key, 2 meta bytes, 10 version bytes and
// either the value (below ValueThreshold) or a 12-byte value pointer.
const (
	txnBaseSize   = int64(len("!badger!txn") + 10)
	entryOverhead = 2 + 10
	valuePointer  = 12
	// roomPercent is the share of Badger's limits that Fits hands out.
	roomPercent = 80
	// roomKeyBytes is what room adds to an operation's estimated bytes for
	// each write: Badger's fixed overhead and 20 bytes of key. The 20%
	// margin absorbs what the estimate misses, and apply refuses an
	// operation that would still not fit before writing any of it.
	roomKeyBytes = 20 + entryOverhead
	// changeWrites and changeBytes estimate one state change of a job (an
	// Update or Delete): at most six writes (payload, record, two index
	// entries removed, two written), keys and the record's fixed part,
	// beyond the job's own strings.
	changeWrites = 6
	changeBytes  = 256
	// recordEstimate bounds the encoded size of a record's fixed fields.
	recordEstimate = 96
	// countedPayloadMax is the most of a payload that an enqueue's estimate
	// counts: the on-disk profiles' ValueThreshold, above which a value
	// costs a pointer (the in-memory profile: doc.go, "In memory").
	countedPayloadMax = 1 << 10
)

// Fits estimates op's writes and answers whether they fit (room): an
// enqueue writes, for each job, its payload, record and state index entry,
// an expiry entry with a deadline and a dedupe entry with a key; a state
// change costs changeWrites writes.
func (t *txn) Fits(op store.Op) bool {
	entries, bytes := 0, 0
	for i := range op.Enqueue {
		n := &op.Enqueue[i]
		entries += 3
		bytes += recordEstimate + min(len(n.Payload), countedPayloadMax) + len(n.Key) + len(n.ContentType) + len(n.TraceParent) + len(n.TraceState) + onSuccessBytes(n.OnSuccess) + 16
		if n.Key != "" {
			entries++
			bytes += len(n.Key) + 8
		}
		if !n.ExpiresAt.IsZero() {
			entries++
		}
		bytes += headerBytes(n.Headers)
	}
	change := func(j *job.Job) {
		entries += changeWrites
		bytes += changeBytes + len(j.Key) + len(j.LastError) + len(j.ContentType) + len(j.Queue) + len(j.Result) + len(j.TraceParent) + len(j.TraceState) + onSuccessBytes(j.OnSuccess) + headerBytes(j.Headers)
	}
	if op.Change != nil {
		change(op.Change)
	}
	for _, j := range op.Delete {
		change(j)
	}
	se, sb := scheduleFits(op.Schedule)
	return t.room(entries+se, bytes+sb)
}

func headerBytes(h map[string]string) int {
	n := 0
	for k, v := range h {
		n += len(k) + len(v) + 4
	}
	return n
}

// room answers whether entries writes of about bytes bytes (values, queue
// names and keys) fit, against 80% of db.MaxBatchCount and db.MaxBatchSize.
// Of bytes it assumes the worst split: each value below ValueThreshold
// counts whole, one at or above it only as a pointer, so entries writes
// cost at most min(bytes, entries*(ValueThreshold-1)) plus roomKeyBytes
// each.
func (t *txn) room(entries int, bytes int) bool {
	e, n := int64(max(entries, 0)), int64(max(bytes, 0))
	cost := min(n, e*(t.b.valueThreshold-1)) + e*roomKeyBytes
	return t.count+e <= t.b.roomCount && t.size+cost <= t.b.roomSize
}

// cost is Badger's estimate of w (txn.go, checkSize).
func (t *txn) cost(w write) int64 {
	v := int64(len(w.val))
	if v >= t.b.valueThreshold {
		v = valuePointer
	}
	return int64(len(w.key)) + v + entryOverhead
}

// fits checks the writes ws of operation op against Badger's limits as
// Badger counts them, so that an operation that does not fit fails whole
// (wrapping badger.ErrTxnTooBig) before any of it is written.
func (t *txn) fits(op string, ws []write) error {
	size := t.size
	for _, w := range ws {
		size += t.cost(w)
	}
	if t.count+int64(len(ws)) >= t.b.db.MaxBatchCount() || size >= t.b.db.MaxBatchSize() {
		return fmt.Errorf("%s: %w (%d entries, %d bytes; Fits was not asked or was wrong)",
			op, badger.ErrTxnTooBig, t.count+int64(len(ws)), size)
	}
	return nil
}

// jobOverheadBytes is what Reserve counts for a job beyond its payload, key
// and headers: its keys, record fields and index entries.
const jobOverheadBytes = 256

// reserveCost is the room Reserve asks for jobs on the disk.
func reserveCost(jobs []job.New) int {
	n := 0
	for i := range jobs {
		n += len(jobs[i].Payload) + len(jobs[i].Key) + jobOverheadBytes
		for k, v := range jobs[i].Headers {
			n += len(k) + len(v)
		}
	}
	return n
}
