package dispatch

import (
	"github.com/heraldhq/herald/destination"
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
// (cancelled) and deliveries their transformation skipped are not
// counted.
func statsRows(out *commitOutput) []StatsRow {
	var rows []StatsRow
	index := make(map[statsKey]int)
	// Results of a batch mostly share an endpoint and a minute: the
	// previous result's rows are tried first.
	var last struct {
		app, endpoint string
		minute        int64
		rows          [4]int
	}
	last.minute = -1
	for i, res := range out.results {
		resp := res.resp
		if resp == nil || resp.Outcome == destination.Skipped {
			// Cancelled: no attempt. Skipped by the transformation: no
			// request, counted like an event the endpoint's filter does
			// not match (in no statistic).
			continue
		}
		at := resp.Completed.UTC()
		app, ep, minute := res.job.AppID, res.job.EndpointID, at.Unix()/60
		if app != last.app || ep != last.endpoint || minute != last.minute {
			n := 0
			for _, e := range [2]string{ep, ""} {
				for _, r := range [2]time.Duration{StatsMinute, StatsHour} {
					b := at.Truncate(r)
					k := statsKey{app, e, r, b.Unix()}
					j, ok := index[k]
					if !ok {
						j = len(rows)
						index[k] = j
						rows = append(rows, StatsRow{AppID: app, EndpointID: e, Resolution: r, Bucket: b})
					}
					last.rows[n] = j
					n++
				}
			}
			last.app, last.endpoint, last.minute = app, ep, minute
		}
		d := resp.Duration()
		bin, ms := stats.LatencyBin(d), d.Milliseconds()
		status := out.changes[i].Status
		for _, j := range last.rows {
			row := &rows[j]
			switch resp.Outcome {
			case destination.Delivered:
				row.AttemptsSucceeded++
			case destination.Retryable, destination.Throttled, destination.Deferred:
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
			row.DurationMs += ms
			row.Latency[bin]++
		}
	}
	return rows
}
