// Package stats answers questions about delivery statistics (how many
// attempts and deliveries succeeded, how fast endpoints answer) from
// roll-ups that the dispatch engine's recorder maintains as it records
// attempts, in the same transaction: per endpoint and per app, per minute
// and per hour, counts by outcome and a fixed log-scale histogram of
// attempt durations. A query reads at most a few thousand roll-up rows,
// whatever the traffic, and never scans attempts.
package stats

import (
	"math"
	"time"
)

// LatencyBins is the number of bins of the attempt duration histogram.
// Bin i holds durations up to BinUpper(i): bounds grow by √2 from 1 ms
// (bin 0: up to 1 ms) to about 46 s (bin 31 holds everything longer than
// bin 30's 32.8 s), so a percentile read from them is within about 20%.
const LatencyBins = 32

// LatencyBin returns the histogram bin of an attempt duration: the first
// bin whose upper bound it does not exceed. It runs once per attempt on
// the recorder's path, so it searches a table instead of taking a
// logarithm.
func LatencyBin(d time.Duration) int {
	lo, hi := 0, LatencyBins-1
	for lo < hi {
		m := (lo + hi) / 2
		if d <= binUpper[m] {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// binUpper holds BinUpper of every bin but the last, unbounded one.
var binUpper = func() (b [LatencyBins - 1]time.Duration) {
	for i := range b {
		b[i] = time.Duration(binUpperMs(i) * float64(time.Millisecond))
	}
	return b
}()

// BinUpper returns the upper bound of bin i (the last bin's is infinite:
// +Inf as a float64 of milliseconds is returned by binUpperMs).
func BinUpper(i int) time.Duration {
	return time.Duration(binUpperMs(i) * float64(time.Millisecond))
}

func binUpperMs(i int) float64 {
	if i >= LatencyBins-1 {
		return math.Inf(1)
	}
	return math.Pow(2, float64(i)/2)
}

// binLowerMs returns the lower bound of bin i in milliseconds.
func binLowerMs(i int) float64 {
	if i == 0 {
		return 0
	}
	return math.Pow(2, float64(i-1)/2)
}

// Percentile returns the q-quantile (0 < q ≤ 1) of the durations counted
// in hist, interpolated within its bin (geometrically, the bins being
// log-scale), or 0 if hist is empty. Durations in the last, unbounded bin
// read as its lower bound.
func Percentile(hist *[LatencyBins]int64, q float64) time.Duration {
	var total int64
	for _, n := range hist {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var seen float64
	for i, n := range hist {
		if n == 0 {
			continue
		}
		if seen+float64(n) >= rank {
			lo, hi := binLowerMs(i), binUpperMs(i)
			frac := (rank - seen) / float64(n)
			var ms float64
			switch {
			case math.IsInf(hi, 1):
				ms = lo
			case lo == 0:
				ms = hi * frac
			default:
				ms = lo * math.Pow(hi/lo, frac)
			}
			return time.Duration(ms * float64(time.Millisecond))
		}
		seen += float64(n)
	}
	return BinUpper(LatencyBins - 2)
}
