package main

import (
	"math"
	"math/bits"
	"time"
)

// histogram is a log-linear bucket histogram of durations (HDR style):
// values below histSub nanoseconds are exact; above, each power of two is
// split into histSub buckets, so a value is known within 1/histSub (under
// 0.8%; the midpoint that quantiles report is within 0.4%). It is not safe
// for concurrent use: each goroutine records into its own and they merge.
type histogram struct {
	counts [histBuckets]uint64
	n      int64
	max    int64
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits // buckets per power of two
	histBuckets = histSub + (64-histSubBits)*histSub
)

func newHistogram() *histogram { return &histogram{} }

func histIndex(v int64) int {
	if v < histSub {
		return int(max(v, 0))
	}
	shift := bits.Len64(uint64(v)) - histSubBits - 1 // v>>shift is in [histSub, 2*histSub)
	return histSub + shift*histSub + int(v>>shift) - histSub
}

// histValue is the midpoint of bucket i.
func histValue(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	shift := (i - histSub) / histSub
	low := int64(histSub+(i-histSub)%histSub) << shift
	return low + (int64(1)<<shift)/2
}

func (h *histogram) record(d time.Duration) {
	v := int64(d)
	h.counts[histIndex(v)]++
	h.n++
	h.max = max(h.max, v)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile is the value at or below which a fraction q of the records lie.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(histValue(i), h.max))
		}
	}
	return time.Duration(h.max)
}

func (h *histogram) summary() latencySum {
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
	return latencySum{
		Count: h.n,
		P50:   ms(h.quantile(0.50)),
		P90:   ms(h.quantile(0.90)),
		P99:   ms(h.quantile(0.99)),
		Max:   ms(time.Duration(h.max)),
	}
}
