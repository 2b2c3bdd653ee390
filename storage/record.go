package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// Record versions: the first byte of a job record. doc.go describes the
// fields. Version 1 (no payload section) was never released and is refused;
// a later version gets a new number and decodeRecord keeps reading this one.
const (
	recordV1 byte = 1
	recordV2 byte = 2
	recordV3 byte = 3 // version 2 plus optional fields (extFields)
)

// extField is an optional job field of record version 3: stored as a tag
// and a string after LeaseExpires, only when get returns non-empty. A
// record whose optional fields are all empty is written as version 2, so a
// store written without them stays readable by the release before them.
// Tags are never reused; a record with a tag this build does not know is
// refused (it was written by a newer release).
type extField struct {
	tag  uint64
	name string
	get  func(*job.Job) string
	set  func(*job.Job, string) error
}

// extFields lists the optional fields in increasing tag order.
var extFields = []extField{
	// Ordered groups (engine/groups.go).
	{tag: 1, name: "group",
		get: func(j *job.Job) string { return j.Group },
		set: func(j *job.Job, v string) error { j.Group = v; return nil }},
	// A retained done job's result (bytes, kept as they came) and whether
	// it was cut at the queue's max_result.
	{tag: 2, name: "result",
		get: func(j *job.Job) string { return string(j.Result) },
		set: func(j *job.Job, v string) error { j.Result = []byte(v); return nil }},
	{tag: 3, name: "result_truncated",
		get: func(j *job.Job) string {
			if j.ResultTruncated {
				return "1"
			}
			return ""
		},
		set: func(j *job.Job, v string) error {
			if v != "1" {
				return fmt.Errorf("%q, want 1", v)
			}
			j.ResultTruncated = true
			return nil
		}},
	// The W3C trace context the job was enqueued with.
	{tag: 4, name: "traceparent",
		get: func(j *job.Job) string { return j.TraceParent },
		set: func(j *job.Job, v string) error { j.TraceParent = v; return nil }},
	{tag: 5, name: "tracestate",
		get: func(j *job.Job) string { return j.TraceState },
		set: func(j *job.Job, v string) error { j.TraceState = v; return nil }},
	// Follow-up jobs (engine/followup.go): the queue of the job a success
	// enqueues and, when one was given, its payload after a marker byte
	// (so that an empty payload given is stored too).
	{tag: 6, name: "on_success",
		get: func(j *job.Job) string {
			if j.OnSuccess == nil {
				return ""
			}
			return j.OnSuccess.Queue
		},
		set: func(j *job.Job, v string) error { j.OnSuccess = &job.FollowUp{Queue: v}; return nil }},
	{tag: 7, name: "on_success_payload",
		get: func(j *job.Job) string {
			if j.OnSuccess == nil || !j.OnSuccess.HasPayload {
				return ""
			}
			return "\x01" + string(j.OnSuccess.Payload)
		},
		set: func(j *job.Job, v string) error {
			if j.OnSuccess == nil || v[0] != 1 {
				return errors.New("without on_success, or no marker")
			}
			j.OnSuccess.Payload, j.OnSuccess.HasPayload = []byte(v[1:]), true
			return nil
		}},
}

// appendExt appends j's optional fields (count, then tag and string each)
// and reports whether there were any.
func appendExt(b []byte, j *job.Job) ([]byte, bool) {
	n := 0
	for i := range extFields {
		if extFields[i].get(j) != "" {
			n++
		}
	}
	if n == 0 {
		return b, false
	}
	b = binary.AppendUvarint(b, uint64(n))
	for i := range extFields {
		if v := extFields[i].get(j); v != "" {
			b = binary.AppendUvarint(b, extFields[i].tag)
			b = appendString(b, v)
		}
	}
	return b, true
}

// readExt reads the optional fields into j: tags strictly increasing, each
// known, each non-empty.
func (d *decoder) readExt(j *job.Job) error {
	n := d.uvarint()
	if d.err != nil {
		return fmt.Errorf("%w: %v", errBadRecord, d.err)
	}
	if n == 0 || n > uint64(len(extFields)) {
		return fmt.Errorf("%w: %d optional fields", errBadRecord, n)
	}
	next := 0
	for range n {
		tag, v := d.uvarint(), d.string()
		if d.err != nil {
			return fmt.Errorf("%w: %v", errBadRecord, d.err)
		}
		for next < len(extFields) && extFields[next].tag < tag {
			next++
		}
		if next == len(extFields) || extFields[next].tag != tag {
			return fmt.Errorf("%w: optional field %d unknown or out of order (written by a newer release?)", errBadRecord, tag)
		}
		if v == "" {
			return fmt.Errorf("%w: optional field %s empty", errBadRecord, extFields[next].name)
		}
		if err := extFields[next].set(j, v); err != nil {
			return fmt.Errorf("%w: optional field %s: %v", errBadRecord, extFields[next].name, err)
		}
		next++
	}
	return nil
}

// inlinePayloadMax is the largest payload, in bytes, that a record carries
// inline; a larger one has its own payload key. Badger's cost is per entry,
// so a small payload in the record saves one write at Create and one delete
// at Delete. Delete relies on it to know, from Size alone, whether a payload
// key exists: changing it needs a new record version.
const inlinePayloadMax = 512

// Where a record says its payload is.
const (
	payloadApart  byte = 0 // under its own payload key, framed
	payloadInline byte = 1 // in the record: CRC-32C, then the bytes
)

var errBadRecord = errors.New("malformed job record")

// payloadSection is the tail of a record for payload p: its length, where
// it is and, when inline, its CRC-32C and bytes. Update copies a stored
// record's section unchanged.
func payloadSection(p []byte) []byte {
	if len(p) > inlinePayloadMax {
		b := binary.AppendUvarint(make([]byte, 0, 11), uint64(len(p)))
		return append(b, payloadApart)
	}
	b := binary.AppendUvarint(make([]byte, 0, 7+len(p)), uint64(len(p)))
	b = append(b, payloadInline)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(p, castagnoli))
	return append(b, p...)
}

// encodeRecord encodes every field of j except Payload and Size, then the
// payload section (payloadSection, or the one decodeRecord returned).
func encodeRecord(j *job.Job, section []byte) []byte {
	n := 96 + len(j.Queue) + len(j.Key) + len(j.ContentType) + len(j.LastError) + len(j.LeaseID) + len(j.Result) + len(j.TraceParent) + len(j.TraceState) + onSuccessBytes(j.OnSuccess) + len(section)
	for k, v := range j.Headers {
		n += len(k) + len(v) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, recordV2)
	b = binary.AppendUvarint(b, uint64(j.ID))
	b = appendString(b, j.Queue)
	b = append(b, byte(j.State))
	b = binary.AppendVarint(b, int64(j.Attempt))
	b = binary.AppendVarint(b, int64(j.MaxAttempts))
	b = binary.AppendVarint(b, nanos(j.CreatedAt))
	b = binary.AppendVarint(b, nanos(j.RunAt))
	b = binary.AppendVarint(b, nanos(j.ExpiresAt))
	b = binary.AppendVarint(b, int64(j.TTR))
	b = appendString(b, j.Key)
	b = binary.AppendUvarint(b, uint64(len(j.Headers)))
	if len(j.Headers) > 0 {
		// Sorted, so that equal jobs encode to equal bytes.
		keys := make([]string, 0, len(j.Headers))
		for k := range j.Headers {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = appendString(b, k)
			b = appendString(b, j.Headers[k])
		}
	}
	b = appendString(b, j.ContentType)
	b = appendString(b, j.LastError)
	b = binary.AppendUvarint(b, j.ReadySeq)
	b = appendString(b, j.LeaseID)
	b = binary.AppendVarint(b, nanos(j.LeaseExpires))
	b, ext := appendExt(b, j)
	if ext {
		b[0] = recordV3
	}
	return append(b, section...)
}

// onSuccessBytes is about what a follow-up adds to a record.
func onSuccessBytes(f *job.FollowUp) int {
	if f == nil {
		return 0
	}
	return len(f.Queue) + len(f.Payload) + 8
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeRecord decodes a record. It checks every length and the inline
// payload's checksum against the input and returns an error, never panics,
// on malformed bytes. j.Size is set; j.Payload is set when the payload is
// inline (nil when it has its own key). The payload and section share b's
// memory; nothing else does. Headers is nil when the job has none.
func decodeRecord(b []byte) (j *job.Job, section []byte, err error) {
	switch {
	case len(b) == 0:
		return nil, nil, fmt.Errorf("%w: empty", errBadRecord)
	case b[0] == recordV1:
		return nil, nil, fmt.Errorf("%w: record version 1 (pre-release format) is not supported", errBadRecord)
	case b[0] != recordV2 && b[0] != recordV3:
		return nil, nil, fmt.Errorf("%w: unknown version %d", errBadRecord, b[0])
	}
	d := decoder{b: b[1:]}
	j = &job.Job{}
	j.ID = job.ID(d.uvarint())
	j.Queue = d.string()
	j.State = job.State(d.byte())
	j.Attempt = d.int()
	j.MaxAttempts = d.int()
	j.CreatedAt = fromNanos(d.varint())
	j.RunAt = fromNanos(d.varint())
	j.ExpiresAt = fromNanos(d.varint())
	j.TTR = time.Duration(d.varint())
	j.Key = d.string()
	if n := d.uvarint(); n > 0 && d.err == nil {
		// Each header takes at least two bytes: bound the map by the input.
		if n > uint64(len(d.b)/2) {
			return nil, nil, fmt.Errorf("%w: %d headers in %d bytes", errBadRecord, n, len(d.b))
		}
		j.Headers = make(map[string]string, n)
		for range n {
			k := d.string()
			j.Headers[k] = d.string()
		}
	}
	j.ContentType = d.string()
	j.LastError = d.string()
	j.ReadySeq = d.uvarint()
	j.LeaseID = d.string()
	j.LeaseExpires = fromNanos(d.varint())
	if b[0] == recordV3 && d.err == nil {
		if err := d.readExt(j); err != nil {
			return nil, nil, err
		}
	}
	section = d.b
	size := d.uvarint()
	where := d.byte()
	switch {
	case d.err != nil:
		return nil, nil, fmt.Errorf("%w: %v", errBadRecord, d.err)
	case j.State < job.StateReady || j.State > job.StateDone:
		return nil, nil, fmt.Errorf("%w: state %d", errBadRecord, j.State)
	case where == payloadApart && size <= inlinePayloadMax:
		return nil, nil, fmt.Errorf("%w: payload of %d bytes kept apart", errBadRecord, size)
	case where == payloadApart && size > math.MaxInt32:
		// Badger refuses values this large; an int holds it on 32-bit.
		return nil, nil, fmt.Errorf("%w: payload of %d bytes", errBadRecord, size)
	case where == payloadApart && len(d.b) != 0:
		return nil, nil, fmt.Errorf("%w: %d trailing bytes", errBadRecord, len(d.b))
	case where == payloadApart:
		j.Size = int(size)
		return j, section, nil
	case where != payloadInline:
		return nil, nil, fmt.Errorf("%w: payload placement %d", errBadRecord, where)
	case size > inlinePayloadMax:
		return nil, nil, fmt.Errorf("%w: inline payload of %d bytes", errBadRecord, size)
	case uint64(len(d.b)) != 4+size:
		return nil, nil, fmt.Errorf("%w: inline payload of %d bytes in %d", errBadRecord, size, len(d.b))
	}
	p := d.b[4:]
	if binary.BigEndian.Uint32(d.b) != crc32.Checksum(p, castagnoli) {
		return nil, nil, fmt.Errorf("%w: inline payload checksum mismatch", errBadRecord)
	}
	j.Payload, j.Size = p, len(p)
	return j, section, nil
}

// decoder reads fields from b; after the first error every read returns
// zero and the error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("truncated or invalid %s", what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("byte")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// int reads a varint that must fit an int (32 bits on arm).
func (d *decoder) int() int {
	v := d.varint()
	if int64(int(v)) != v {
		d.fail("int")
		return 0
	}
	return int(v)
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("string length")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// payloadV1 is the first byte of a framed payload: version, CRC-32C of the
// payload (big-endian), payload. Badger logs and swallows value-log read
// errors (Item.Value yields nil and no error); the frame turns that, and
// any other damage to a payload, into an error instead of a wrong payload.
const payloadV1 byte = 1

// payloadFrame is the frame's size.
const payloadFrame = 5

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errBadPayload = errors.New("payload unreadable or damaged")

func encodePayload(p []byte) []byte {
	v := make([]byte, payloadFrame, payloadFrame+len(p))
	v[0] = payloadV1
	binary.BigEndian.PutUint32(v[1:], crc32.Checksum(p, castagnoli))
	return append(v, p...)
}

// decodePayload checks a framed payload and returns the payload, which
// shares v's memory.
func decodePayload(v []byte) ([]byte, error) {
	switch {
	case len(v) < payloadFrame:
		return nil, fmt.Errorf("%w: %d bytes", errBadPayload, len(v))
	case v[0] != payloadV1:
		return nil, fmt.Errorf("%w: unknown version %d", errBadPayload, v[0])
	case binary.BigEndian.Uint32(v[1:]) != crc32.Checksum(v[payloadFrame:], castagnoli):
		return nil, fmt.Errorf("%w: checksum mismatch", errBadPayload)
	}
	return v[payloadFrame:], nil
}
