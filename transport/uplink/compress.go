package uplink

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Encodings an uplink may compress with, by their Content-Encoding names;
// "" sends bodies as they are.
const (
	EncodingGzip = "gzip"
	EncodingZstd = "zstd"
)

// CheckEncoding answers an error naming enc unless it is "", gzip or zstd.
func CheckEncoding(enc string) error {
	switch enc {
	case "", EncodingGzip, EncodingZstd:
		return nil
	}
	return fmt.Errorf("unknown compression %q (want gzip or zstd)", enc)
}

// gzipWriters are reused: a gzip.Writer holds some 800 KiB of tables.
var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression)
	return w
}}

// zstdEncoder is shared: EncodeAll is safe for concurrent use and keeps
// its own pool of encoders, at most one per concurrent call up to
// GOMAXPROCS. Built on first use, so uplinks without zstd pay nothing.
var zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithLowerEncoderMem(true))
})

// Compress appends src compressed with enc (see CheckEncoding) to dst and
// answers the extended buffer; "" appends src as it is. Safe for
// concurrent use: encoders are pooled, not allocated per call.
func Compress(enc string, dst, src []byte) ([]byte, error) {
	switch enc {
	case "":
		return append(dst, src...), nil
	case EncodingGzip:
		buf := bytes.NewBuffer(dst)
		w := gzipWriters.Get().(*gzip.Writer)
		defer gzipWriters.Put(w)
		w.Reset(buf)
		if _, err := w.Write(src); err != nil {
			return dst, fmt.Errorf("gzip: %w", err)
		}
		if err := w.Close(); err != nil {
			return dst, fmt.Errorf("gzip: %w", err)
		}
		return buf.Bytes(), nil
	case EncodingZstd:
		e, err := zstdEncoder()
		if err != nil {
			return dst, fmt.Errorf("zstd: %w", err)
		}
		return e.EncodeAll(src, dst), nil
	}
	return dst, CheckEncoding(enc)
}
