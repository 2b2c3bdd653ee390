package exechandler

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"testing"
)

func TestTailBuffer(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		writes []string
		want   string
		trunc  bool
	}{
		{name: "empty", size: 4, want: ""},
		{name: "fits", size: 8, writes: []string{"ab", "cd"}, want: "abcd"},
		{name: "exactly full", size: 4, writes: []string{"ab", "cd"}, want: "abcd"},
		{name: "wraps", size: 4, writes: []string{"abc", "def"}, want: "cdef", trunc: true},
		{name: "one long write", size: 4, writes: []string{"abcdefghij"}, want: "ghij", trunc: true},
		{name: "long write after wrap", size: 4, writes: []string{"abc", "de", "fghijk"}, want: "hijk", trunc: true},
		{name: "byte at a time", size: 3, writes: []string{"a", "b", "c", "d", "e"}, want: "cde", trunc: true},
		{name: "zero size", size: 0, writes: []string{"abc"}, want: "", trunc: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTailBuffer(tt.size)
			for _, w := range tt.writes {
				if n, err := tb.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v; want %d, nil", w, n, err, len(w))
				}
			}
			if got := string(tb.Bytes()); got != tt.want {
				t.Errorf("Bytes() = %q, want %q", got, tt.want)
			}
			if got := tb.Truncated(); got != tt.trunc {
				t.Errorf("Truncated() = %v, want %v", got, tt.trunc)
			}
		})
	}
}

// TestTailBufferRandom checks the ring against the plain answer, the last
// size bytes of everything written, for random write sizes.
func TestTailBufferRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		size := r.IntN(64) + 1
		tb := newTailBuffer(size)
		var all []byte
		for range r.IntN(50) {
			p := make([]byte, r.IntN(3*size))
			for i := range p {
				p[i] = byte('a' + r.IntN(26))
			}
			tb.Write(p)
			all = append(all, p...)
		}
		want := all[max(0, len(all)-size):]
		if got := tb.Bytes(); !bytes.Equal(got, want) {
			t.Fatalf("size %d after %d bytes: Bytes() = %q, want %q", size, len(all), got, want)
		}
	}
}

func TestTailBufferString(t *testing.T) {
	tests := []struct {
		name string
		size int
		in   string
		want string
	}{
		{name: "trims space", size: 32, in: "  oops\n", want: "oops"},
		{name: "marks the cut", size: 4, in: "hello world", want: "...orld"},
		{name: "drops a cut rune", size: 4, in: "xx\u00e9abc", want: "...abc"}, // é is 2 bytes; 1 kept
		{name: "replaces invalid utf-8", size: 32, in: "a\xffb", want: "a\uFFFDb"},
		{name: "blank", size: 32, in: "\n\n", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTailBuffer(tt.size)
			tb.Write([]byte(tt.in))
			if got := tb.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func BenchmarkTailBuffer(b *testing.B) {
	for _, n := range []int{1, 512, 32 << 10} {
		p := bytes.Repeat([]byte{'x'}, n)
		b.Run(byteSize(n), func(b *testing.B) {
			tb := newTailBuffer(DefaultStderrTail)
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				tb.Write(p)
			}
		})
	}
}

func byteSize(n int) string {
	if n >= 1<<10 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
