package exechandler

import (
	"strings"
	"unicode/utf8"
)

// tailBuffer is an io.Writer that keeps the last len(buf) bytes written to
// it, in a ring, so its memory is fixed however much is written. It is not
// safe for concurrent use: os/exec writes to it from one goroutine and
// String is called after Wait, which waits for that goroutine.
type tailBuffer struct {
	buf     []byte
	pos     int   // where the next byte goes once the ring has wrapped
	written int64 // total bytes written
}

func newTailBuffer(size int) *tailBuffer {
	return &tailBuffer{buf: make([]byte, size)}
}

// Write keeps the end of p; it never fails.
func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	t.written += int64(n)
	size := len(t.buf)
	if size == 0 {
		return n, nil
	}
	if len(p) > size {
		p = p[len(p)-size:]
	}
	c := copy(t.buf[t.pos:], p)
	copy(t.buf, p[c:])
	t.pos = (t.pos + len(p)) % size
	return n, nil
}

// Bytes returns a copy of the bytes kept, oldest first.
func (t *tailBuffer) Bytes() []byte {
	if t.written <= int64(len(t.buf)) {
		return append([]byte(nil), t.buf[:t.written]...)
	}
	out := make([]byte, 0, len(t.buf))
	out = append(out, t.buf[t.pos:]...)
	return append(out, t.buf[:t.pos]...)
}

// Truncated reports whether bytes were dropped.
func (t *tailBuffer) Truncated() bool { return t.written > int64(len(t.buf)) }

// String returns the tail as text for last_error: surrounding space
// trimmed, a rune cut in half by the ring dropped, invalid UTF-8 replaced,
// and "..." in front when the start was cut off.
func (t *tailBuffer) String() string {
	b := t.Bytes()
	if t.Truncated() {
		for i := 0; i < utf8.UTFMax-1 && len(b) > 0 && !utf8.RuneStart(b[0]); i++ {
			b = b[1:]
		}
	}
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "\uFFFD"))
	if t.Truncated() && s != "" {
		s = "..." + s
	}
	return s
}

// headBuffer keeps the first max bytes written to it and drops the rest
// (never failing, so the command is not cut off by a full result). Not safe
// for concurrent use, like tailBuffer.
type headBuffer struct {
	buf []byte
	max int
}

// Write keeps what fits; it never fails.
func (h *headBuffer) Write(p []byte) (int, error) {
	if room := h.max - len(h.buf); room > 0 {
		h.buf = append(h.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
