package main

import (
	"fmt"
	"net/http"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// commitTotals are herald's group commits so far, from its metrics: how
// many transactions the publisher and the recorder ran, what they held and
// how long they took; and what Go's runtime allocated and collected.
type commitTotals struct {
	pubCommits, pubEvents, pubSeconds  float64
	recCommits, recResults, recSeconds float64
	allocBytes, gcCycles               float64
}

// add returns the sum of two totals (of two replicas).
func (t commitTotals) add(o commitTotals) commitTotals {
	return commitTotals{t.pubCommits + o.pubCommits, t.pubEvents + o.pubEvents, t.pubSeconds + o.pubSeconds,
		t.recCommits + o.recCommits, t.recResults + o.recResults, t.recSeconds + o.recSeconds,
		t.allocBytes + o.allocBytes, t.gcCycles + o.gcCycles}
}

// fleetCommits sums the commit totals of every replica (zero where one
// cannot be read: commit figures are then missing, not wrong).
func fleetCommits(fleet []*heraldProc) commitTotals {
	var sum commitTotals
	for _, h := range fleet {
		t, err := h.commits()
		if err != nil {
			return commitTotals{}
		}
		sum = sum.add(t)
	}
	return sum
}

// commits reads the commit totals from herald's /metrics.
func (h *heraldProc) commits() (commitTotals, error) {
	var t commitTotals
	resp, err := http.Get(h.url + "/metrics")
	if err != nil {
		return t, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return t, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return t, fmt.Errorf("parse /metrics: %w", err)
	}
	hist := func(name string) (count, sum float64) {
		f := families[name]
		if f == nil {
			return 0, 0
		}
		for _, m := range f.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				count += float64(h.GetSampleCount())
				sum += h.GetSampleSum()
			}
		}
		return count, sum
	}
	t.pubCommits, t.pubEvents = hist("herald_publisher_batch_size")
	_, t.pubSeconds = hist("herald_publisher_commit_duration_seconds")
	t.recCommits, t.recResults = hist("herald_recorder_batch_size")
	_, t.recSeconds = hist("herald_recorder_commit_duration_seconds")
	if f := families["go_memstats_alloc_bytes_total"]; f != nil && len(f.GetMetric()) > 0 {
		t.allocBytes = f.GetMetric()[0].GetCounter().GetValue()
	}
	if f := families["go_gc_duration_seconds"]; f != nil && len(f.GetMetric()) > 0 {
		t.gcCycles = float64(f.GetMetric()[0].GetSummary().GetSampleCount())
	}
	return t, nil
}

// commitMetrics adds to r what the group commits between a and b held and
// cost: events per publishing commit, results per recording commit and
// their mean durations; and the bytes allocated per delivery and the
// garbage collections meanwhile.
func commitMetrics(r *result, a, b commitTotals) {
	if n := b.pubCommits - a.pubCommits; n > 0 {
		r.Metrics["publishCommits"] = n
		r.Metrics["eventsPerPublishCommit"] = (b.pubEvents - a.pubEvents) / n
		r.Metrics["publishCommitMs"] = (b.pubSeconds - a.pubSeconds) / n * 1000
	}
	if n := b.recCommits - a.recCommits; n > 0 {
		r.Metrics["recordCommits"] = n
		r.Metrics["resultsPerRecordCommit"] = (b.recResults - a.recResults) / n
		r.Metrics["recordCommitMs"] = (b.recSeconds - a.recSeconds) / n * 1000
	}
	if n := r.Metrics["deliveries"]; n > 0 && b.allocBytes > a.allocBytes {
		// Allocation is steadier from run to run than CPU time on a noisy
		// host: a change to a hot path shows here first.
		r.Metrics["allocKBPerDelivery"] = (b.allocBytes - a.allocBytes) / n / 1024
		r.Metrics["gcCycles"] = b.gcCycles - a.gcCycles
	}
}
