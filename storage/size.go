package storage

import (
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

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

// Room answers against 80% of db.MaxBatchCount and db.MaxBatchSize. Of
// bytes it assumes the worst split: each value below ValueThreshold counts
// whole, one at or above it only as a pointer, so entries writes cost at
// most min(bytes, entries*(ValueThreshold-1)) plus roomKeyBytes each.
func (t *txn) Room(entries int, bytes int) bool {
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
		return fmt.Errorf("%s: %w (%d entries, %d bytes; Room was not asked or was wrong)",
			op, badger.ErrTxnTooBig, t.count+int64(len(ws)), size)
	}
	return nil
}
