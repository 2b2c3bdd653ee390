package storage

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// Keyspace prefixes: the first byte of every key. doc.go documents the
// layout. None is '!' (0x21), the first byte of Badger's reserved keys.
const (
	prefixMeta    byte = 0x01 // id → record
	prefixPayload byte = 0x02 // id → payload
	prefixReady   byte = 0x03 // queue 0x00 ReadySeq → id RunAt
	prefixDelayed byte = 0x04 // RunAt id → queue
	prefixExpiry  byte = 0x05 // ExpiresAt id → queue
	prefixLeased  byte = 0x06 // id → LeaseExpires Attempt LeaseID queue
	prefixDead    byte = 0x07 // queue 0x00 id → (empty)
	prefixDedupe  byte = 0x08 // queue 0x00 form key → id, with a Badger TTL
	prefixSeq     byte = 0x09 // (nothing) → seq
	prefixReclaim byte = 0x0a // (nothing) → (empty), written and dropped by reclaim
	prefixDone    byte = 0x0b // ExpiresAt id → queue: retained done jobs
	prefixGroup   byte = 0x0c // queue 0x00 group 0x00 ReadySeq → id RunAt
	// 0x0d..0x0f are left to other keyspaces of jobs.
	prefixSchedule byte = 0x10 // name → version Last Fired [1 spec]
)

// maxGroupLen bounds a group name in a key (job.CheckGroupName: 128 bytes).
const maxGroupLen = 128

// maxQueueLen bounds a queue name in a key (SPEC 2: at most 64 bytes).
const maxQueueLen = 64

// A dedupe key of more than maxRawDedupeKey bytes is stored as its SHA-256,
// so that no idempotency key can make a Badger key too long (Badger refuses
// keys over 65000 bytes) or fill a transaction.
const maxRawDedupeKey = 128

// Forms of the idempotency key in a dedupe key.
const (
	dedupeRaw    byte = 0 // the key bytes
	dedupeSHA256 byte = 1 // the SHA-256 of the key bytes
)

var errBadKey = errors.New("malformed key")

// checkKeyQueue checks what the layout needs of a queue name: 1 to 64 bytes
// and no 0x00, which terminates it in keys. Names are validated against
// SPEC's pattern by the engine; this only keeps the keyspaces apart.
func checkKeyQueue(q string) error {
	if len(q) == 0 || len(q) > maxQueueLen {
		return fmt.Errorf("%w: queue name of %d bytes", job.ErrInvalidQueue, len(q))
	}
	for i := 0; i < len(q); i++ {
		if q[i] == 0 {
			return fmt.Errorf("%w: queue name %q contains a zero byte", job.ErrInvalidQueue, q)
		}
	}
	return nil
}

// nanos converts a time to the stored form: UnixNano, with the zero time as 0.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos is the inverse of nanos.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// orderedNanos maps a signed time to an unsigned one with the same order, so
// that big-endian bytes sort like the times (flipping the sign bit).
func orderedNanos(n int64) uint64 { return uint64(n) ^ (1 << 63) }

func unorderedNanos(u uint64) int64 { return int64(u ^ (1 << 63)) }

func idKey(prefix byte, id job.ID) []byte {
	k := make([]byte, 9)
	k[0] = prefix
	binary.BigEndian.PutUint64(k[1:], uint64(id))
	return k
}

func metaKey(id job.ID) []byte    { return idKey(prefixMeta, id) }
func payloadKey(id job.ID) []byte { return idKey(prefixPayload, id) }
func leasedKey(id job.ID) []byte  { return idKey(prefixLeased, id) }

var seqKey = []byte{prefixSeq}

// decodeIDKey decodes a meta, payload or leased key.
func decodeIDKey(prefix byte, k []byte) (job.ID, error) {
	if len(k) != 9 || k[0] != prefix {
		return 0, errBadKey
	}
	return job.ID(binary.BigEndian.Uint64(k[1:])), nil
}

// queuePrefix is prefix, queue, 0x00: the start of a per-queue keyspace.
// The terminator keeps queue "a"'s range apart from queue "ab"'s.
func queuePrefix(prefix byte, q string) ([]byte, error) {
	if err := checkKeyQueue(q); err != nil {
		return nil, err
	}
	k := make([]byte, 0, len(q)+2+8)
	k = append(k, prefix)
	k = append(k, q...)
	return append(k, 0), nil
}

// queueKey is queuePrefix followed by a big-endian number.
func queueKey(prefix byte, q string, n uint64) ([]byte, error) {
	k, err := queuePrefix(prefix, q)
	if err != nil {
		return nil, err
	}
	return binary.BigEndian.AppendUint64(k, n), nil
}

func readyKey(q string, seq uint64) ([]byte, error) { return queueKey(prefixReady, q, seq) }
func deadKey(q string, id job.ID) ([]byte, error)   { return queueKey(prefixDead, q, uint64(id)) }

// checkKeyGroup checks what the layout needs of a group name: 1 to 128
// bytes and no 0x00, which terminates it in keys.
func checkKeyGroup(g string) error {
	if len(g) == 0 || len(g) > maxGroupLen || strings.IndexByte(g, 0) >= 0 {
		return fmt.Errorf("%w: group name %q", job.ErrInvalidArgument, g)
	}
	return nil
}

// groupPrefix is prefixGroup, queue, 0x00, group, 0x00: the start of one
// group's entries in the group-ready index.
func groupPrefix(q, g string) ([]byte, error) {
	if err := checkKeyGroup(g); err != nil {
		return nil, err
	}
	k, err := queuePrefix(prefixGroup, q)
	if err != nil {
		return nil, err
	}
	k = append(k, g...)
	return append(k, 0), nil
}

// groupKey is a group-ready key: groupPrefix, ReadySeq.
func groupKey(q, g string, seq uint64) ([]byte, error) {
	k, err := groupPrefix(q, g)
	if err != nil {
		return nil, err
	}
	return binary.BigEndian.AppendUint64(k, seq), nil
}

// decodeGroupKey splits the rest of a group-ready key after its queue
// prefix: group, 0x00, ReadySeq.
func decodeGroupKey(rest []byte) (g []byte, seq uint64, err error) {
	i := bytes.IndexByte(rest, 0)
	if i < 1 || i > maxGroupLen || len(rest) != i+9 {
		return nil, 0, errBadKey
	}
	return rest[:i], binary.BigEndian.Uint64(rest[i+1:]), nil
}

// delayedValue is a delayed entry's value: the queue, and for a retry
// waiting with its place (a job with a group, or one of an ordered queue:
// ReadySeq set) 0x00, ReadySeq(8) and the group, if any. The engine
// rebuilds its groups and its held ordered queues from these at start.
func delayedValue(j *job.Job) []byte {
	if j.Group == "" && j.ReadySeq == 0 {
		return []byte(j.Queue)
	}
	v := make([]byte, 0, len(j.Queue)+9+len(j.Group))
	v = append(v, j.Queue...)
	v = append(v, 0)
	v = binary.BigEndian.AppendUint64(v, j.ReadySeq)
	return append(v, j.Group...)
}

// decodeDelayedValue splits a delayed value; q and g share v's memory.
func decodeDelayedValue(v []byte) (q, g []byte, seq uint64, err error) {
	i := bytes.IndexByte(v, 0)
	if i < 0 {
		return v, nil, 0, checkValueQueue(v)
	}
	q, rest := v[:i], v[i+1:]
	if err := checkValueQueue(q); err != nil {
		return nil, nil, 0, err
	}
	if len(rest) < 8 || len(rest)-8 > maxGroupLen || bytes.IndexByte(rest[8:], 0) >= 0 {
		return nil, nil, 0, errBadValue
	}
	return q, rest[8:], binary.BigEndian.Uint64(rest), nil
}

// splitQueue splits prefix, queue, 0x00, rest. It allocates the queue name.
func splitQueue(prefix byte, k []byte) (q string, rest []byte, err error) {
	if len(k) < 3 || k[0] != prefix {
		return "", nil, errBadKey
	}
	for i := 1; i < len(k) && i <= maxQueueLen+1; i++ {
		if k[i] == 0 {
			if i == 1 {
				return "", nil, errBadKey
			}
			return string(k[1:i]), k[i+1:], nil
		}
	}
	return "", nil, errBadKey
}

// decodeQueueKey decodes a ready or dead key.
func decodeQueueKey(prefix byte, k []byte) (string, uint64, error) {
	q, rest, err := splitQueue(prefix, k)
	if err != nil {
		return "", 0, err
	}
	if len(rest) != 8 {
		return "", 0, errBadKey
	}
	return q, binary.BigEndian.Uint64(rest), nil
}

// timedKey is prefix, time, id: the delayed, expiry and done indexes.
func timedKey(prefix byte, at int64, id job.ID) []byte {
	k := make([]byte, 17)
	k[0] = prefix
	binary.BigEndian.PutUint64(k[1:], orderedNanos(at))
	binary.BigEndian.PutUint64(k[9:], uint64(id))
	return k
}

func decodeTimedKey(prefix byte, k []byte) (int64, job.ID, error) {
	if len(k) != 17 || k[0] != prefix {
		return 0, 0, errBadKey
	}
	return unorderedNanos(binary.BigEndian.Uint64(k[1:])), job.ID(binary.BigEndian.Uint64(k[9:])), nil
}

// dedupeKey is prefix, queue, 0x00, form, key (or its SHA-256).
func dedupeKey(q, key string) ([]byte, error) {
	k, err := queuePrefix(prefixDedupe, q)
	if err != nil {
		return nil, err
	}
	if len(key) <= maxRawDedupeKey {
		k = append(k, dedupeRaw)
		return append(k, key...), nil
	}
	sum := sha256.Sum256([]byte(key))
	k = append(k, dedupeSHA256)
	return append(k, sum[:]...), nil
}

// decodeDedupeKey returns the queue, the form and the stored key bytes.
func decodeDedupeKey(k []byte) (q string, form byte, key []byte, err error) {
	q, rest, err := splitQueue(prefixDedupe, k)
	if err != nil {
		return "", 0, nil, err
	}
	if len(rest) < 1 {
		return "", 0, nil, errBadKey
	}
	form, key = rest[0], rest[1:]
	switch {
	case form == dedupeRaw && len(key) <= maxRawDedupeKey:
	case form == dedupeSHA256 && len(key) == sha256.Size:
	default:
		return "", 0, nil, errBadKey
	}
	return q, form, key, nil
}

// readyValue is id, RunAt: a ready entry answers Ready without the record.
func readyValue(id job.ID, runAt int64) []byte {
	v := make([]byte, 16)
	binary.BigEndian.PutUint64(v, uint64(id))
	binary.BigEndian.PutUint64(v[8:], uint64(runAt))
	return v
}

func decodeReadyValue(v []byte) (job.ID, int64, error) {
	if len(v) != 16 {
		return 0, 0, errBadValue
	}
	return job.ID(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:])), nil
}

// lease is what a leased entry carries besides its queue: the lease's
// authoritative fields (doc.go, "Lease overlay"). A lease that changes
// nothing else of the job writes only its index entries, so the record
// may still hold the fields of the job before the lease; Job reads them
// from the entry.
type lease struct {
	expires int64 // LeaseExpires, in the stored form (nanos)
	attempt int
	id      string // LeaseID
}

// leasedValue is LeaseExpires(8), uvarint Attempt, string LeaseID (uvarint
// length, bytes), queue (the rest). Attempt is stored as its two's
// complement in 64 bits, so any int round-trips (the engine's are never
// negative).
func leasedValue(l lease, q string) []byte {
	v := make([]byte, 8, 8+10+10+len(l.id)+len(q))
	binary.BigEndian.PutUint64(v, uint64(l.expires))
	v = binary.AppendUvarint(v, uint64(int64(l.attempt)))
	v = appendString(v, l.id)
	return append(v, q...)
}

// leaseOf returns the lease fields of j as a leased entry stores them.
func leaseOf(j *job.Job) lease {
	return lease{expires: nanos(j.LeaseExpires), attempt: j.Attempt, id: j.LeaseID}
}

// decodeLeasedValue decodes a leased value; the queue shares v's memory,
// the LeaseID does not. It returns errBadValue on malformed bytes, never
// panics.
func decodeLeasedValue(v []byte) (lease, []byte, error) {
	at, attempt, id, q, err := splitLeasedValue(v)
	if err != nil {
		return lease{}, nil, err
	}
	return lease{expires: at, attempt: attempt, id: string(id)}, q, nil
}

// splitLeasedValue splits a leased value without allocating: Leased and
// Counts need only LeaseExpires and the queue.
func splitLeasedValue(v []byte) (at int64, attempt int, id, q []byte, err error) {
	if len(v) < 8 {
		return 0, 0, nil, nil, errBadValue
	}
	rest := v[8:]
	a, n := binary.Uvarint(rest)
	if n <= 0 || int64(int(int64(a))) != int64(a) {
		return 0, 0, nil, nil, errBadValue
	}
	rest = rest[n:]
	idLen, n := binary.Uvarint(rest)
	if n <= 0 || idLen > uint64(len(rest)-n) {
		return 0, 0, nil, nil, errBadValue
	}
	rest = rest[n:]
	id, q = rest[:idLen], rest[idLen:]
	if err := checkValueQueue(q); err != nil {
		return 0, 0, nil, nil, err
	}
	return int64(binary.BigEndian.Uint64(v)), int(int64(a)), id, q, nil
}

// checkValueQueue checks a queue name read from a delayed, expiry or leased
// value, without allocating it.
func checkValueQueue(q []byte) error {
	if len(q) == 0 || len(q) > maxQueueLen {
		return errBadValue
	}
	for _, c := range q {
		if c == 0 {
			return errBadValue
		}
	}
	return nil
}

func idValue(id job.ID) []byte { return binary.BigEndian.AppendUint64(nil, uint64(id)) }

func decodeIDValue(v []byte) (job.ID, error) {
	if len(v) != 8 {
		return 0, errBadValue
	}
	return job.ID(binary.BigEndian.Uint64(v)), nil
}

var errBadValue = errors.New("malformed index value")

// nextSeq returns n+1 and whether it did not overflow: the seek key for
// "strictly after n".
func nextSeq(n uint64) (uint64, bool) {
	if n == math.MaxUint64 {
		return 0, false
	}
	return n + 1, true
}
