package native

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Version is what a hello names and answers.
const Version = "edgeq/1"

// Request ops, the kind byte of a request frame (docs/protocol.md §4).
const (
	opHello   byte = 1
	opEnqueue byte = 2
	opBatch   byte = 3
	opLease   byte = 4
	opAck     byte = 5
	opNack    byte = 6
	opFail    byte = 7
	opExtend  byte = 8
	opAcks    byte = 9
)

// Answer statuses, the kind byte of an answer frame.
const (
	statusOK    byte = 0
	statusError byte = 1
)

// Enqueue answer flags.
const (
	flagDurable   byte = 1
	flagDuplicate byte = 2
)

const frameHeader = 4 // the big-endian length before every frame

// DefaultMaxFrame is max_frame when neither it nor max_payload is set;
// otherwise the default is 8 × max_payload (what a batch of large payloads
// needs), at least this.
const DefaultMaxFrame = 1 << 20

// errFrameTooLarge is a frame length above max_frame or 0.
type errFrameTooLarge struct{ n, max int }

func (e *errFrameTooLarge) Error() string {
	if e.n == 0 {
		return "frame: 0 bytes (a frame holds at least its kind byte)"
	}
	return fmt.Sprintf("frame: %d bytes, above max_frame %d", e.n, e.max)
}

// readFrameLen reads a frame's length and checks it against maxFrame.
func readFrameLen(r io.Reader, hdr *[frameHeader]byte, maxFrame int) (int, error) {
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || uint64(n) > uint64(maxFrame) {
		return int(n), &errFrameTooLarge{n: int(n), max: maxFrame}
	}
	return int(n), nil
}

// beginFrame appends a frame header with a length to fill in and the kind
// byte; endFrame sets the length of the frame that starts at start.
func beginFrame(b []byte, kind byte) []byte {
	return append(b, 0, 0, 0, 0, kind)
}

func endFrame(b []byte, start int) []byte {
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-frameHeader))
	return b
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(b, 0)
	}
	return binary.AppendVarint(b, t.UnixNano())
}

// errShort is a body that ends inside a field.
var errShort = errors.New("truncated")

// decoder reads the fields of a frame body; the first error sticks, and
// every read after it answers zero values.
type decoder struct {
	b   []byte
	err error
	at  string // the field being read, for the error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = fmt.Errorf("%s: %w", d.at, err)
	}
}

func (d *decoder) uvarint(field string) uint64 {
	if !d.begin(field) {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if !d.advance(n) {
		return 0
	}
	return v
}

func (d *decoder) varint(field string) int64 {
	if !d.begin(field) {
		return 0
	}
	v, n := binary.Varint(d.b)
	if !d.advance(n) {
		return 0
	}
	return v
}

// begin starts reading field; false once an earlier read failed.
func (d *decoder) begin(field string) bool {
	d.at = field
	return d.err == nil
}

// advance skips the n bytes of a varint just read, or records why there
// was none: binary.Uvarint and Varint answer 0 for a short buffer and a
// negative n for an overflow.
func (d *decoder) advance(n int) bool {
	switch {
	case n == 0:
		d.fail(errShort)
	case n < 0:
		d.fail(errors.New("varint overflows 64 bits"))
	default:
		d.b = d.b[n:]
		return true
	}
	return false
}

func (d *decoder) byte1(field string) byte {
	if !d.begin(field) {
		return 0
	}
	if len(d.b) == 0 {
		d.fail(errShort)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// bytes reads a str field without copying it: the slice points into the
// frame.
func (d *decoder) bytes(field string) []byte {
	n := d.uvarint(field)
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(fmt.Errorf("%w: %d bytes announced, %d left in the frame", errShort, n, len(d.b)))
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) str(field string) string { return string(d.bytes(field)) }

func (d *decoder) time(field string) time.Time {
	ns := d.varint(field)
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// count reads a count of items that each take at least minSize bytes, so
// that a count the frame cannot hold is refused before anything is
// allocated for it.
func (d *decoder) count(field string, minSize int) int {
	n := d.uvarint(field)
	if d.err == nil && n > uint64(len(d.b)/minSize) {
		d.fail(fmt.Errorf("%w: %d items cannot fit in the %d bytes left", errShort, n, len(d.b)))
		return 0
	}
	return int(n)
}

// end fails on bytes left after the last field.
func (d *decoder) end() {
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("frame: %d bytes after the last field", len(d.b))
	}
}

// param is a request parameter: a name and its value as text.
type param struct{ name, value string }

// request is a decoded request body: target, parameters and the op's data.
type request struct {
	target string
	params []param
	data   []byte // points into the frame
}

// maxParams bounds the parameters of one request or batch job: the most a
// request could need is every option plus 64 job headers.
const maxParams = 128

// decodeRequest splits a request body (docs/protocol.md §3).
func decodeRequest(body []byte) (request, error) {
	d := decoder{b: body}
	var r request
	r.target = d.str("target")
	r.params = d.params("params")
	if d.err != nil {
		return request{}, d.err
	}
	r.data = d.b
	return r, nil
}

// params reads a parameter list.
func (d *decoder) params(field string) []param {
	n := d.count(field, 2)
	if d.err != nil {
		return nil
	}
	if n > maxParams {
		d.at = field
		d.fail(fmt.Errorf("%d parameters, at most %d", n, maxParams))
		return nil
	}
	if n == 0 {
		return nil
	}
	ps := make([]param, n)
	for i := range ps {
		ps[i].name = d.str(field + " name")
		ps[i].value = d.str(field + " value")
	}
	return ps
}

// appendRequest appends a request frame.
func appendRequest(b []byte, op byte, target string, params []param, data []byte) []byte {
	start := len(b)
	b = beginFrame(b, op)
	b = appendStr(b, target)
	b = appendParams(b, params)
	b = append(b, data...)
	return endFrame(b, start)
}

func appendParams(b []byte, params []param) []byte {
	b = binary.AppendUvarint(b, uint64(len(params)))
	for _, p := range params {
		b = appendStr(b, p.name)
		b = appendStr(b, p.value)
	}
	return b
}

// appendError appends an error answer frame.
func appendError(b []byte, code, message string, retryAfterS int) []byte {
	start := len(b)
	b = beginFrame(b, statusError)
	b = appendStr(b, code)
	b = appendStr(b, message)
	b = binary.AppendUvarint(b, uint64(max(retryAfterS, 0)))
	return endFrame(b, start)
}

func appendUvarint(b []byte, v int) []byte { return binary.AppendUvarint(b, uint64(v)) }
