package dispatch

import (
	"time"

	"github.com/heraldhq/herald/stats"
)

// Resolutions of the statistics roll-ups (StatsRow.Resolution).
const (
	StatsMinute = time.Minute
	StatsHour   = time.Hour
)

// StatsRow is what one recorded batch adds to one roll-up bucket of
// delivery statistics: one endpoint's (or, with EndpointID "", one app's)
// attempts and finished deliveries in one minute or one hour. The
// recorder adds them in the transaction that records the attempts, so the
// statistics never disagree with the attempt log (package stats reads
// them).
type StatsRow struct {
	AppID string
	// EndpointID is "" for the app's total over all its endpoints.
	EndpointID string
	// Resolution is StatsMinute or StatsHour; Bucket is the start of the
	// bucket, a multiple of the resolution since the Unix epoch.
	Resolution time.Duration
	Bucket     time.Time

	AttemptsSucceeded   int64
	AttemptsRetryable   int64
	AttemptsPermanent   int64
	DeliveriesSucceeded int64
	DeliveriesFailed    int64
	// DurationMs is the sum of the attempts' durations in milliseconds;
	// Latency counts them per histogram bin (stats.LatencyBin).
	DurationMs int64
	Latency    [stats.LatencyBins]int64
}

type statsKey struct {
	app, endpoint string
	res           time.Duration
	bucket        int64
}

// statsRows rolls up the attempts and finished deliveries of a committed
// batch, by completion time: each attempt lands in its endpoint's and its
// app's minute and hour buckets. Deliveries failed without an attempt
// (cancelled) are not counted.
func statsRows(out *commitOutput) []StatsRow {
	var rows []StatsRow
	index := make(map[statsKey]int)
	for i, res := range out.results {
		resp := res.resp
		if resp == nil {
			continue
		}
		status := out.changes[i].Status
		at := resp.Completed.UTC()
		for _, ep := range [2]string{res.job.EndpointID, ""} {
			for _, r := range [2]time.Duration{StatsMinute, StatsHour} {
				b := at.Truncate(r)
				k := statsKey{res.job.AppID, ep, r, b.Unix()}
				j, ok := index[k]
				if !ok {
					j = len(rows)
					index[k] = j
					rows = append(rows, StatsRow{AppID: res.job.AppID, EndpointID: ep, Resolution: r, Bucket: b})
				}
				row := &rows[j]
				switch resp.Outcome {
				case Success:
					row.AttemptsSucceeded++
				case Retryable:
					row.AttemptsRetryable++
				default:
					row.AttemptsPermanent++
				}
				switch status {
				case "SUCCEEDED":
					row.DeliveriesSucceeded++
				case "FAILED":
					row.DeliveriesFailed++
				}
				d := resp.Duration()
				row.DurationMs += d.Milliseconds()
				row.Latency[stats.LatencyBin(d)]++
			}
		}
	}
	return rows
}
