package graph

import (
	"context"
	"errors"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/heraldhq/herald/bus"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/graph/model"
	"github.com/heraldhq/herald/stats"
)

// statsRefresh is how often at most statsUpdated sends fresh numbers.
const statsRefresh = time.Second

// readStats reads the statistics of an endpoint, or of an app (endpointID
// ""), that the caller may see.
func (r *Resolver) readStats(ctx context.Context, appID, endpointID string, window, bucket time.Duration) (*model.DeliveryStats, error) {
	if r.stats == nil {
		return nil, errors.New("delivery statistics are not configured")
	}
	if err := stats.Check(window, bucket, "window", "bucket"); err != nil {
		return nil, err
	}
	res, err := r.stats.Read(ctx, stats.Query{AppID: appID, EndpointID: endpointID, Window: window, Bucket: bucket, Now: r.now()})
	if err != nil {
		return nil, err
	}
	n := len(res.Buckets)
	out := &model.DeliveryStats{From: res.From, To: res.To, Bucket: res.Bucket, Total: statsPoint(res.From, &res.Total),
		Series: make([]*model.DeliveryStatsPoint, n)}
	cols := &model.DeliveryStatsColumns{
		Start: make([]*time.Time, n), Attempts: make([]int, n), AttemptsSucceeded: make([]int, n), AttemptsRetryable: make([]int, n),
		AttemptsPermanent: make([]int, n), DeliveriesSucceeded: make([]int, n), DeliveriesFailed: make([]int, n),
		SuccessRate: make([]*float64, n), DeliverySuccessRate: make([]*float64, n),
		P50Ms: make([]*float64, n), P95Ms: make([]*float64, n), P99Ms: make([]*float64, n), MeanMs: make([]*float64, n),
	}
	for i := range res.Buckets {
		p := statsPoint(res.Buckets[i].Start, &res.Buckets[i].Counts)
		out.Series[i] = p
		cols.Start[i], cols.Attempts[i], cols.AttemptsSucceeded[i] = &p.Start, p.Attempts.Total, p.Attempts.Succeeded
		cols.AttemptsRetryable[i], cols.AttemptsPermanent[i] = p.Attempts.Retryable, p.Attempts.Permanent
		cols.DeliveriesSucceeded[i], cols.DeliveriesFailed[i] = p.Deliveries.Succeeded, p.Deliveries.Failed
		cols.SuccessRate[i], cols.DeliverySuccessRate[i] = p.SuccessRate, p.DeliverySuccessRate
		if l := p.Latency; l != nil {
			cols.P50Ms[i], cols.P95Ms[i], cols.P99Ms[i], cols.MeanMs[i] = &l.P50Ms, &l.P95Ms, &l.P99Ms, &l.MeanMs
		}
	}
	out.Columns = cols
	return out, nil
}

func statsPoint(start time.Time, c *stats.Counts) *model.DeliveryStatsPoint {
	p := &model.DeliveryStatsPoint{
		Start: start,
		Attempts: &model.AttemptCounts{Total: int(c.Attempts()), Succeeded: int(c.AttemptsSucceeded),
			Retryable: int(c.AttemptsRetryable), Permanent: int(c.AttemptsPermanent)},
		Deliveries: &model.DeliveryCounts{Total: int(c.Deliveries()), Succeeded: int(c.DeliveriesSucceeded), Failed: int(c.DeliveriesFailed)},
	}
	if rate, ok := c.AttemptSuccessRate(); ok {
		p.SuccessRate = &rate
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		p.Latency = &model.LatencySummary{P50Ms: ms(c.Percentile(.5)), P95Ms: ms(c.Percentile(.95)), P99Ms: ms(c.Percentile(.99)), MeanMs: ms(c.Mean())}
	}
	if rate, ok := c.DeliverySuccessRate(); ok {
		p.DeliverySuccessRate = &rate
	}
	return p
}

// liveStats sends the statistics of an endpoint or app at once, then again
// at most every statsRefresh while attempts are recorded in it (the
// endpoints feed says so) and whenever the current bucket ends, so that
// a chart moves without polling. It counts against the connection's
// subscriptions like every feed.
func (r *Resolver) liveStats(ctx context.Context, f bus.Filter, read func(context.Context) (*model.DeliveryStats, error)) (<-chan *model.DeliveryStats, error) {
	first, err := read(ctx)
	if err != nil {
		return nil, err
	}
	f.Coalesce = true // a message only marks the numbers stale: a burst never ends the feed
	sub, done, err := openFeed(ctx, r.bus, f)
	if err != nil {
		return nil, err
	}
	out := make(chan *model.DeliveryStats, 1)
	go func() {
		defer done()
		defer close(out)
		send := func(st *model.DeliveryStats) bool {
			select {
			case out <- st:
				return true
			case <-ctx.Done():
				return false
			}
		}
		if !send(first) {
			return
		}
		until := first.To
		tick := time.NewTicker(statsRefresh)
		defer tick.Stop()
		dirty := false
		for {
			select {
			case <-ctx.Done():
				return
			case <-sub.Done():
				if err := sub.Err(); err != nil && !errors.Is(err, bus.ErrClosed) && ctx.Err() == nil {
					transport.AddSubscriptionError(ctx, subscriptionError(err))
				}
				return
			case <-sub.C:
				dirty = true
			case <-tick.C:
				if !dirty && r.now().Before(until) {
					continue
				}
				st, err := read(ctx)
				if err != nil {
					if ctx.Err() == nil {
						transport.AddSubscriptionError(ctx, &gqlerror.Error{Message: "internal error: the failure was logged on the server",
							Extensions: map[string]any{"code": string(fault.Internal)}})
					}
					return
				}
				dirty, until = false, st.To
				if !send(st) {
					return
				}
			}
		}
	}()
	return out, nil
}
