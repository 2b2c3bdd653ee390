package z

import "testing"

// TestAllocatorSecondBufferEdgeq is edgeq's regression test for the one-line
// change in Allocate (README.edgeq.md): allocations that spill into a second
// buffer must not overlap the first buffer's. On 32-bit platforms the
// unpatched code computed the new position in int, (bufIdx+1)<<32 == 0, and
// handed out the first buffer's bytes again.
func TestAllocatorSecondBufferEdgeq(t *testing.T) {
	a := NewAllocator(1024, "edgeq")
	defer a.Release()
	var bufs [][]byte
	for i := range 8 {
		b := a.Allocate(600) // 1024 holds one; each later one needs a new buffer
		for j := range b {
			b[j] = byte(i + 1)
		}
		bufs = append(bufs, b)
	}
	for i, b := range bufs {
		for j, c := range b {
			if c != byte(i+1) {
				t.Fatalf("allocation %d byte %d = %d, want %d: a later allocation overwrote it", i, j, c, i+1)
			}
		}
	}
}
