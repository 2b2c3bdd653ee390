package resource

import (
	"context"
	"testing"
	"time"
)

// BenchmarkSampleDecide is one governor tick on this machine: the real
// Linux sampler (root "/") and decide. At the default 1 Hz the CPU share of
// one core is ns/op ÷ 1e9.
//
//	go test -run '^$' -bench SampleDecide -benchmem ./resource/
func BenchmarkSampleDecide(b *testing.B) {
	cfg := Config{}.withDefaults()
	s := NewLinuxSampler(b.TempDir(), "/")
	ctx := context.Background()
	st := newState(cfg, time.Now())
	b.ReportAllocs()
	for b.Loop() {
		sample, err := s.Sample(ctx)
		if err != nil {
			b.Fatal(err)
		}
		sample.At = time.Now()
		_, st = decide(sample, st, cfg)
	}
}

// BenchmarkDecide is the pure policy alone.
func BenchmarkDecide(b *testing.B) {
	cfg := Config{}.withDefaults()
	st := newState(cfg, t0)
	s := withMem(healthy(), 88)
	at := t0
	b.ReportAllocs()
	for b.Loop() {
		at = at.Add(time.Second)
		s.At = at
		_, st = decide(s, st, cfg)
	}
}
