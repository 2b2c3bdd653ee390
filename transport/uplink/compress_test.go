package uplink

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

// TestCompressRoundTrip: each encoding's output decodes to its input, from
// concurrent callers sharing the pooled encoders, after what dst held.
func TestCompressRoundTrip(t *testing.T) {
	src := []byte(strings.Repeat(`{"sensor":"t1","value":21.5}`+"\n", 200))
	for _, enc := range []string{"", EncodingGzip, EncodingZstd} {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				out, err := Compress(enc, []byte("prefix"), src)
				if err != nil {
					t.Errorf("%q: %v", enc, err)
					return
				}
				if !bytes.HasPrefix(out, []byte("prefix")) {
					t.Errorf("%q: dst's bytes lost", enc)
					return
				}
				got, err := decodeBody(enc, out[len("prefix"):])
				if err != nil || !bytes.Equal(got, src) {
					t.Errorf("%q: round trip %d bytes, %v; want %d bytes", enc, len(got), err, len(src))
				}
				if enc != "" && len(out)-len("prefix") >= len(src)/4 {
					t.Errorf("%q: %d bytes from %d repetitive ones", enc, len(out), len(src))
				}
			})
		}
		wg.Wait()
	}
	if _, err := Compress("lz4", nil, src); err == nil || !strings.Contains(err.Error(), "lz4") {
		t.Errorf("lz4: %v, want an error naming it", err)
	}
}
