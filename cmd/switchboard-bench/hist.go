package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// A histogram counts durations in log-linear buckets: exact below 128 ns,
// then 64 buckets per power of two (under 1.6% error). Record is safe for
// concurrent use and does not allocate.
type histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	max    atomic.Int64
}

const (
	histSub     = 64
	histBuckets = 2*histSub + 57*histSub
)

func histIndex(v uint64) int {
	if v < 2*histSub {
		return int(v)
	}
	s := bits.Len64(v) - 7 // v>>s is in [64, 127]
	return 2*histSub + (s-1)*histSub + int(v>>s) - histSub
}

// histValue returns the middle of bucket i.
func histValue(i int) int64 {
	if i < 2*histSub {
		return int64(i)
	}
	j := i - 2*histSub
	s := j/histSub + 1
	top := uint64(j%histSub + histSub)
	return int64(top<<s + (1<<s)/2)
}

// Record adds one duration; negative ones count as zero.
func (h *histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[histIndex(uint64(v))].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Count returns the number of recorded durations.
func (h *histogram) Count() uint64 { return h.n.Load() }

// Max returns the largest recorded duration.
func (h *histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Quantile returns the q-quantile (0 < q ≤ 1) of the recorded durations,
// 0 when none was recorded.
func (h *histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	rank = min(max(rank, 1), n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return min(time.Duration(histValue(i)), h.Max())
		}
	}
	return h.Max()
}
