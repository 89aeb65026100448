package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// scenario runs one benchmark scenario against a fresh herald process.
type scenario struct {
	c            *config
	h            *heraldProc   // the first replica: subscribers connect to it
	fleet        []*heraldProc // every replica
	rcv          *receiverProc
	api          *client
	r            *result
	latencyAlone *result
}

func (s *scenario) run(ctx context.Context, name string) error {
	switch name {
	case "ingest":
		return s.ingest(ctx)
	case "single":
		return s.single(ctx, s.c.n(10_000, 1_000), 32)
	case "batched":
		return s.throughput(ctx, 1, s.c.n(20_000, 2_000), nil)
	case "throughput":
		return s.throughput(ctx, 1, s.c.n(100_000, 5_000), nil)
	case "fanout":
		return s.throughput(ctx, 10, s.c.n(20_000, 1_000), nil)
	case "wide":
		if err := s.api.allowEndpoints(ctx, 500); err != nil {
			return err
		}
		return s.throughput(ctx, 500, s.c.n(200, 4), nil)
	case "filtered":
		return s.throughput(ctx, 10, s.c.n(20_000, 1_000), map[string]any{"filter": filterAll})
	case "flow":
		return s.flow(ctx, s.c.n(10_000, 1_000))
	case "latency":
		return s.latency(ctx, 0, s.c.rate)
	case "steady":
		rate := 500
		if s.c.quick {
			rate = s.c.rate
		}
		return s.latency(ctx, 0, rate)
	case "failure":
		return s.failure(ctx)
	case "live":
		return s.latency(ctx, s.c.subscribers, s.c.rate)
	case "rabbitmq":
		return s.rabbitmq(ctx, s.c.n(20_000, 1_000))
	case "nats":
		return s.nats(ctx, s.c.n(20_000, 1_000))
	case "long":
		n := 1_000_000
		if s.c.quick {
			n = 20_000
		}
		return s.long(ctx, n, longRate)
	case "backup":
		return s.backup(ctx, s.c.n(300_000, 5_000))
	}
	return fmt.Errorf("unknown scenario %s", name)
}

func (s *scenario) metric(name string, v float64) { s.r.Metrics[name] = v }
func (s *scenario) note(format string, args ...any) {
	s.r.Notes = append(s.r.Notes, fmt.Sprintf(format, args...))
}

// publishAll publishes n events of type typ in batches of 100 from
// `clients` concurrent clients and returns when all are accepted.
func (s *scenario) publishAll(ctx context.Context, api *client, typ string, n, clients int) error {
	return s.publishAllTo(ctx, api, typ, n, clients, 1)
}

// maxPublishDeliveries is dispatch.MaxPublishDeliveries, the most
// deliveries one publish call may create (the driver does not link the
// engine; a test checks the two agree).
const maxPublishDeliveries = 10_000

// publishAllTo is publishAll for events that each go to endpoints
// endpoints: a call creates at most maxPublishDeliveries deliveries, so it
// carries fewer than 100 events when they go to more than 100 endpoints.
func (s *scenario) publishAllTo(ctx context.Context, api *client, typ string, n, clients, endpoints int) error {
	per := int64(max(1, min(100, maxPublishDeliveries/max(1, endpoints))))
	var next atomic.Int64
	g, ctx := errgroup.WithContext(ctx)
	for range clients {
		g.Go(func() error {
			for {
				start := int(next.Add(per) - per)
				if start >= n {
					return nil
				}
				batch := make([]map[string]any, 0, per)
				for i := start; i < min(start+int(per), n); i++ {
					batch = append(batch, event(typ, i))
				}
				if err := api.do(ctx, publishBatch, map[string]any{"in": batch}, nil); err != nil {
					return fmt.Errorf("publishEvents: %w", err)
				}
			}
		})
	}
	return g.Wait()
}

// ingest measures accepted events per second, in batches of 100 and as
// single calls, into an app with no endpoints (storage and API cost only).
func (s *scenario) ingest(ctx context.Context) error {
	n := s.c.n(200_000, 5_000)
	start := time.Now()
	if err := s.publishAll(ctx, s.api, "order.created", n, 4); err != nil {
		return err
	}
	el := time.Since(start)
	s.metric("batchEventsPerSec", float64(n)/el.Seconds())
	s.note("publishEvents, 100 per call, 4 concurrent clients, %d events in %s", n, el.Round(time.Millisecond))

	m := s.c.n(30_000, 2_000)
	const clients = 32
	var next atomic.Int64
	var lat []time.Duration
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	start = time.Now()
	for range clients {
		g.Go(func() error {
			var mine []time.Duration
			for {
				i := int(next.Add(1)) - 1
				if i >= m {
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
					return nil
				}
				t0 := time.Now()
				if err := s.api.do(gctx, publishOne, map[string]any{"in": event("order.created", i)}, nil); err != nil {
					return fmt.Errorf("publishEvent: %w", err)
				}
				mine = append(mine, time.Since(t0))
			}
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	el = time.Since(start)
	s.metric("singleEventsPerSec", float64(m)/el.Seconds())
	sum := summarize(lat)
	s.metric("singleCallP50Ms", sum.P50)
	s.metric("singleCallP99Ms", sum.P99)
	s.note("publishEvent, %d concurrent clients, %d events in %s", clients, m, el.Round(time.Millisecond))
	return nil
}

// single publishes n events to one endpoint as single publishEvent calls
// from `clients` concurrent clients, the way platforms call Herald (one
// business event, one call), and measures completed deliveries per second
// from the first publish to the last success recorded.
func (s *scenario) single(ctx context.Context, n, clients int) error {
	id, err := s.api.createEndpoint(ctx, "single", s.rcv.url("/single"), []string{"*"}, nil)
	if err != nil {
		return err
	}
	start := time.Now()
	var next atomic.Int64
	lat := make([][]time.Duration, clients)
	g, gctx := errgroup.WithContext(ctx)
	for c := range clients {
		g.Go(func() error {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return nil
				}
				t0 := time.Now()
				if err := s.api.do(gctx, publishOne, map[string]any{"in": event("order.created", i)}, nil); err != nil {
					return fmt.Errorf("publishEvent: %w", err)
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	published := time.Since(start)
	done, err := s.waitSuccesses(ctx, []string{id}, n, start)
	if err != nil {
		return err
	}
	el := done.Sub(start)
	s.metric("deliveries", float64(n))
	s.metric("deliveriesPerSec", float64(n)/el.Seconds())
	s.metric("publishEventsPerSec", float64(n)/published.Seconds())
	sum := summarize(slices.Concat(lat...))
	s.metric("singleCallP50Ms", sum.P50)
	s.metric("singleCallP99Ms", sum.P99)
	st, err := s.rcv.stats()
	if err != nil {
		return err
	}
	if st.Unique < int64(n) {
		return fmt.Errorf("receiver saw %d distinct events, want %d", st.Unique, n)
	}
	s.metric("duplicates", float64(st.Requests-int64(n)))
	s.note("%d single publishEvent calls from %d clients to 1 endpoint, delivered in %s", n, clients, el.Round(time.Millisecond))
	return nil
}

// ceiling measures the most this machine can deliver: the load generator
// posts webhook-sized requests (one benchmark event's envelope and
// headers) straight to the receiver from 64 keep-alive connections, with
// no herald in between.
func ceiling(c *config, rcv *receiverProc, r *result) error {
	d := 5 * time.Second
	if c.quick {
		d = time.Second
	}
	body, err := json.Marshal(map[string]any{"type": "order.created", "timestamp": time.Now().UTC(), "data": event("order.created", 0)["payload"]})
	if err != nil {
		return err
	}
	if err := rcv.reset(0); err != nil {
		return fmt.Errorf("reset receiver: %w", err)
	}
	tr := &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 128}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	url := rcv.url("/ceiling")
	rcpu0, bcpu0 := rcv.cpu(), cpuOf(os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var sent atomic.Int64
	g := new(errgroup.Group)
	start := time.Now()
	for range 64 {
		g.Go(func() error {
			for ctx.Err() == nil {
				n := sent.Add(1)
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
				if err != nil {
					return err
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Webhook-Id", fmt.Sprintf("msg_ceiling_%d", n))
				req.Header.Set("Webhook-Timestamp", strconv.FormatInt(time.Now().Unix(), 10))
				req.Header.Set("Webhook-Signature", "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=")
				req.Header.Set("X-Herald-Attempt", "1")
				resp, err := hc.Do(req)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("post to the receiver: %w", err)
	}
	el := time.Since(start)
	st, err := rcv.stats()
	if err != nil {
		return err
	}
	r.Metrics["requestsPerSec"] = float64(st.Unique) / el.Seconds()
	r.Metrics["receiverCpuSec"] = (rcv.cpu() - rcpu0).Seconds()
	r.Metrics["loadCpuSec"] = (cpuOf(os.Getpid()) - bcpu0).Seconds()
	r.Notes = append(r.Notes, fmt.Sprintf("%d requests of %d bytes from 64 connections in %s, straight to the receiver: the machine's ceiling", st.Unique, len(body), el.Round(time.Millisecond)))
	return nil
}

// throughput publishes n events to `endpoints` endpoints (created with
// the CreateEndpointInput fields in more) and measures completed
// deliveries per second from the first publish to the last success
// recorded in the database.
func (s *scenario) throughput(ctx context.Context, endpoints, n int, more map[string]any) error {
	var ids []string
	for i := range endpoints {
		id, err := s.api.createEndpointWith(ctx, fmt.Sprintf("bench %d", i), s.rcv.url(fmt.Sprintf("/ep%d", i)), []string{"*"}, more)
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	want := n * endpoints
	start := time.Now()
	published := make(chan error, 1)
	var publishDone atomic.Int64
	go func() {
		err := s.publishAllTo(ctx, s.api, "order.created", n, 4, endpoints)
		publishDone.Store(int64(time.Since(start)))
		published <- err
	}()
	done, err := s.waitSuccesses(ctx, ids, want, start)
	if err != nil {
		return err
	}
	if err := <-published; err != nil {
		return err
	}
	el := done.Sub(start)
	s.metric("deliveries", float64(want))
	s.metric("deliveriesPerSec", float64(want)/el.Seconds())
	s.metric("publishEventsPerSec", float64(n)/time.Duration(publishDone.Load()).Seconds())
	filtered := ""
	if more["filter"] != nil {
		filtered = " with a filter that every event matches"
	}
	s.note("%d events × %d endpoint(s)%s = %d deliveries in %s", n, endpoints, filtered, want, el.Round(time.Millisecond))
	st, err := s.rcv.stats()
	if err != nil {
		return err
	}
	if st.Unique < int64(want) && endpoints == 1 {
		return fmt.Errorf("receiver saw %d distinct events, want %d", st.Unique, want)
	}
	s.metric("duplicates", float64(st.Requests-int64(want)))
	file, wal := s.h.dbSize()
	s.metric("dbMBPer100kDeliveries", float64(file)/(1<<20)/float64(want)*100_000)
	s.metric("walMB", float64(wal)/(1<<20))
	return nil
}

// longRate is the events per second of the long run: well below what
// batches reach, so that latency measures Herald rather than a backlog.
const longRate = 4000

// long delivers n events to one endpoint, published in batches of 100 at
// rate events a second, and compares its tenths: publish → arrival
// latency and Herald's peak memory in each, so that growth from start to
// end shows (a leak, a table or cache that slows as it fills).
func (s *scenario) long(ctx context.Context, n, rate int) error {
	id, err := s.api.createEndpoint(ctx, "long", s.rcv.url("/long"), []string{"*"}, nil)
	if err != nil {
		return err
	}
	if err := s.rcv.reset(0); err != nil {
		return err
	}
	type tenth struct {
		lat       latencySummary
		rate      float64
		anon, rss int64
	}
	var (
		mu        sync.Mutex
		cur       memory
		tenths    []tenth
		delivered int64
	)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() { // the peak memory of the current tenth
		defer close(sampled)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			m := s.h.mem()
			mu.Lock()
			cur.anon, cur.rss = max(cur.anon, m.anon), max(cur.rss, m.rss)
			mu.Unlock()
		}
	}()
	defer func() { close(stop); <-sampled }()

	const batch = 100
	every := time.Duration(float64(time.Second) * batch / float64(rate))
	tick := time.NewTicker(every)
	defer tick.Stop()
	size := max(batch, n/10)
	start, tenthStart := time.Now(), time.Now()
	for sent := 0; sent < n; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		evs := make([]map[string]any, 0, batch)
		for i := sent; i < min(sent+batch, n); i++ {
			evs = append(evs, event("order.created", i))
		}
		if err := s.api.do(ctx, publishBatch, map[string]any{"in": evs}, nil); err != nil {
			return fmt.Errorf("publishEvents: %w", err)
		}
		sent += len(evs)
		if sent%size != 0 && sent < n {
			continue
		}
		st, err := s.rcv.stats()
		if err != nil {
			return err
		}
		if err := s.rcv.reset(0); err != nil {
			return err
		}
		mu.Lock()
		tenths = append(tenths, tenth{lat: st.Latency, rate: float64(st.Unique) / time.Since(tenthStart).Seconds(), anon: cur.anon, rss: cur.rss})
		cur = memory{}
		mu.Unlock()
		delivered += st.Unique
		tenthStart = time.Now()
	}
	done, err := s.waitSuccesses(ctx, []string{id}, n, start)
	if err != nil {
		return err
	}
	s.metric("deliveries", float64(n))
	s.metric("deliveriesPerSec", float64(n)/done.Sub(start).Seconds())
	first, last := tenths[0], tenths[len(tenths)-1]
	s.metric("p50FirstTenthMs", first.lat.P50)
	s.metric("p50LastTenthMs", last.lat.P50)
	s.metric("p99FirstTenthMs", first.lat.P99)
	s.metric("p99LastTenthMs", last.lat.P99)
	s.metric("peakRssAnonFirstTenthMB", float64(first.anon)/(1<<20))
	s.metric("peakRssAnonLastTenthMB", float64(last.anon)/(1<<20))
	s.metric("peakRssLastTenthMB", float64(last.rss)/(1<<20))
	for i, t := range tenths {
		s.note("tenth %2d: %5.0f deliveries/s, publish → arrival p50 %.2f ms p99 %.2f ms max %.1f ms, peak RSS %.1f MB (anonymous %.1f)",
			i+1, t.rate, t.lat.P50, t.lat.P99, t.lat.Max, float64(t.rss)/(1<<20), float64(t.anon)/(1<<20))
	}
	s.note("%d events at %d/s in batches of 100 to 1 endpoint, all delivered %s after the first publish (%d seen by the receiver as the tenths ended)",
		n, rate, done.Sub(start).Round(time.Second), delivered)
	return nil
}

// filterAll is a payload filter that every benchmark event matches, after
// looking into its type, a nested number, an array and a set: the
// filtered scenario measures what filters cost at fan-out.
var filterAll = map[string]any{
	"type":             "order.created",
	"data.total":       map[string]any{"$gte": 1000},
	"data.items.*.sku": map[string]any{"$startsWith": "TSHIRT-"},
	"data.currency":    map[string]any{"$in": []string{"EUR", "USD"}},
}

// flow mixes the flow controls: besides 2 plain endpoints, 2 with a filter
// that half the events match, 2 ordered by key (100 keys), and 2 limited
// to 500 requests a second. It reports when each kind was done and the
// rate the limited ones were sent at.
func (s *scenario) flow(ctx context.Context, n int) error {
	const limit = 500
	half := map[string]any{"$or": []any{}}
	for _, d := range []string{"0", "2", "4", "6", "8"} {
		half["$or"] = append(half["$or"].([]any), map[string]any{"data.orderId": map[string]any{"$endsWith": d}})
	}
	kinds := []struct {
		name string
		more map[string]any
		want int
	}{
		{"plain", nil, n},
		{"filtered", map[string]any{"filter": half}, n / 2},
		{"ordered", map[string]any{"ordering": "KEY"}, n},
		{"limited", map[string]any{"rateLimit": map[string]any{"requests": limit, "per": "1s"}}, n},
	}
	ids := map[string][]string{}
	total := 0
	for _, k := range kinds {
		for i := range 2 {
			id, err := s.api.createEndpointWith(ctx, fmt.Sprintf("%s %d", k.name, i), s.rcv.url(fmt.Sprintf("/%s%d", k.name, i)), []string{"*"}, k.more)
			if err != nil {
				return err
			}
			ids[k.name] = append(ids[k.name], id)
			total += k.want
		}
	}
	start := time.Now()
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for range 4 {
		g.Go(func() error {
			for {
				from := int(next.Add(100)) - 100
				if from >= n {
					return nil
				}
				batch := make([]map[string]any, 0, 100)
				for i := from; i < min(from+100, n); i++ {
					ev := event("order.created", i)
					ev["orderingKey"] = fmt.Sprintf("cus_%03d", i%100)
					batch = append(batch, ev)
				}
				if err := s.api.do(gctx, publishBatch, map[string]any{"in": batch}, nil); err != nil {
					return fmt.Errorf("publishEvents: %w", err)
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	var unlimitedDone time.Time // when all but the limited ones were done
	for _, k := range kinds {
		done, err := s.waitSuccesses(ctx, ids[k.name], 2*k.want, start)
		if err != nil {
			return fmt.Errorf("%s endpoints: %w", k.name, err)
		}
		el := done.Sub(start)
		s.metric(k.name+"Seconds", el.Seconds())
		if k.name == "limited" {
			s.metric("limitedPerEndpointPerSec", float64(k.want)/el.Seconds())
		} else if done.After(unlimitedDone) {
			unlimitedDone = done
		}
	}
	s.metric("deliveries", float64(total))
	s.metric("unlimitedDeliveriesPerSec", float64(total-2*n)/unlimitedDone.Sub(start).Seconds())
	s.note("%d events to 2 plain, 2 filtered (half match), 2 ordered by key (100 keys) and 2 limited (%d/s) endpoints: %d deliveries; the limited ones finish last by design", n, limit, total)
	return nil
}

// waitSuccesses polls the endpoints' success counters until they add up to
// want, and returns when that was first seen.
func (s *scenario) waitSuccesses(ctx context.Context, ids []string, want int, start time.Time) (time.Time, error) {
	timeout := 10*time.Minute + time.Duration(want)*time.Millisecond
	last, lastChange := 0, time.Now()
	for {
		got, err := s.api.successCount(ctx, ids)
		if err != nil {
			return time.Time{}, err
		}
		now := time.Now()
		if got >= want {
			return now, nil
		}
		if got != last {
			last, lastChange = got, now
		}
		if now.Sub(lastChange) > 60*time.Second || now.Sub(start) > timeout {
			return time.Time{}, fmt.Errorf("only %d of %d deliveries succeeded (stalled)", got, want)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// latency publishes single events at a steady rate and reports
// publish→arrival percentiles measured by the receiver. With subscribers >
// 0 it also runs that many deliveryUpdated subscriptions, each watching its
// own event type, and reports how fast updates reach them.
func (s *scenario) latency(ctx context.Context, subscribers, rate int) error {
	if err := s.api.allowUnknownTypes(ctx); err != nil {
		return err
	}
	id, err := s.api.createEndpoint(ctx, "latency", s.rcv.url("/latency"), []string{"*"}, nil)
	if err != nil {
		return err
	}
	types := max(1, subscribers)
	var subs []*wsSubscriber
	var feed []time.Duration
	var feedMu sync.Mutex
	var received atomic.Int64
	var wg sync.WaitGroup
	var gBefore int
	if subscribers > 0 {
		if gBefore, err = s.h.settledGoroutines(); err != nil {
			return err
		}
	}
	for k := range subscribers {
		sub, err := subscribeWS(s.h.url, s.h.token, `subscription($t: String) { deliveryUpdated(eventType: $t, status: SUCCEEDED) { deliveryId at } }`,
			map[string]any{"t": fmt.Sprintf("live.t%d", k)})
		if err != nil {
			return fmt.Errorf("subscriber %d: %w", k, err)
		}
		subs = append(subs, sub)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				data, err := sub.next()
				if err != nil {
					return
				}
				var u struct {
					DeliveryUpdated struct{ At time.Time }
				}
				if json.Unmarshal(data, &u) == nil {
					feedMu.Lock()
					feed = append(feed, time.Since(u.DeliveryUpdated.At))
					feedMu.Unlock()
					received.Add(1)
				}
			}
		}()
	}
	closeSubs := func() {
		for _, sub := range subs {
			sub.close()
		}
		wg.Wait()
	}
	defer closeSubs()
	var gDuring int
	if subscribers > 0 {
		if gDuring, err = s.h.settledGoroutines(); err != nil {
			return err
		}
	}

	total := int(s.c.duration.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	slots := make(chan int, 1024)
	g, gctx := errgroup.WithContext(ctx)
	start := time.Now()
	g.Go(func() error {
		defer close(slots)
		for i := range total {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
			select {
			case slots <- i:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	var late atomic.Int64
	for range 64 {
		g.Go(func() error {
			for i := range slots {
				if time.Since(start.Add(time.Duration(i)*interval)) > 50*time.Millisecond {
					late.Add(1)
				}
				if err := s.api.do(gctx, publishOne, map[string]any{"in": event(fmt.Sprintf("live.t%d", i%types), i)}, nil); err != nil {
					return fmt.Errorf("publishEvent: %w", err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	sent := time.Since(start)
	if _, err := s.waitSuccesses(ctx, []string{id}, total, start); err != nil {
		return err
	}
	st, err := s.rcv.stats()
	if err != nil {
		return err
	}
	s.metric("p50Ms", st.Latency.P50)
	s.metric("p95Ms", st.Latency.P95)
	s.metric("p99Ms", st.Latency.P99)
	s.metric("maxMs", st.Latency.Max)
	s.metric("achievedEventsPerSec", float64(total)/sent.Seconds())
	s.metric("deliveries", float64(total))
	s.note("%d events at %d/s for %s; latency = publish call start → receiver arrival", total, rate, s.c.duration)
	if late.Load() > int64(total/100) {
		s.note("the load generator fell behind on %d events: the publish rate was lower than asked", late.Load())
	}
	if subscribers == 0 {
		return nil
	}
	if !waitFor(10*time.Second, func() bool { return received.Load() >= int64(total) }) {
		return fmt.Errorf("subscribers received %d of %d SUCCEEDED updates", received.Load(), total)
	}
	feedMu.Lock()
	fs := summarize(slices.Clone(feed))
	feedMu.Unlock()
	s.metric("subscribers", float64(subscribers))
	s.metric("feedP50Ms", fs.P50)
	s.metric("feedP99Ms", fs.P99)
	if s.latencyAlone != nil && s.latencyAlone.Metrics["p99Ms"] > 0 {
		s.metric("p99VsAloneRatio", st.Latency.P99/s.latencyAlone.Metrics["p99Ms"])
		s.metric("p50VsAloneRatio", st.Latency.P50/s.latencyAlone.Metrics["p50Ms"])
	}
	s.note("each subscriber watches deliveryUpdated(eventType: live.tK, status: SUCCEEDED); feed latency = commit of the attempt → arrival at the subscriber")
	return s.checkSubscriberCleanup(closeSubs, subscribers, gDuring-gBefore)
}

// checkSubscriberCleanup drops every subscriber's connection without a
// goodbye and checks that the server frees the goroutines they held:
// the count must fall by what subscribing added (within a small margin).
func (s *scenario) checkSubscriberCleanup(closeSubs func(), subscribers, added int) error {
	gLoaded, err := s.h.settledGoroutines()
	if err != nil {
		return err
	}
	closeSubs()
	var freed int
	waitFor(10*time.Second, func() bool {
		g, err := s.h.settledGoroutines()
		freed = gLoaded - g
		return err == nil && freed >= added
	})
	leaked := added - freed
	s.metric("goroutinesPerSubscriber", float64(added)/float64(subscribers))
	s.metric("goroutinesLeaked", float64(max(0, leaked)))
	if leaked > subscribers/10+5 {
		return fmt.Errorf("subscribers added %d goroutines but closing them freed only %d: goroutine leak", added, freed)
	}
	return nil
}

// failure answers 20% of first attempts with 503 and checks that every
// event still ends SUCCEEDED, with a short retry policy.
func (s *scenario) failure(ctx context.Context) error {
	n := s.c.n(20_000, 2_000)
	if err := s.rcv.reset(0.2); err != nil {
		return err
	}
	defer s.rcv.reset(0) //nolint:errcheck
	retry := map[string]any{"maxAttempts": 5, "initialDelay": "200ms", "backoffMultiplier": 2, "maxDelay": "2s"}
	id, err := s.api.createEndpoint(ctx, "flaky", s.rcv.url("/flaky"), []string{"*"}, retry)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := s.publishAll(ctx, s.api, "order.created", n, 4); err != nil {
		return err
	}
	done, err := s.waitSuccesses(ctx, []string{id}, n, start)
	if err != nil {
		return err
	}
	st, err := s.rcv.stats()
	if err != nil {
		return err
	}
	if st.Unique != int64(n) {
		return fmt.Errorf("receiver accepted %d distinct events, want %d", st.Unique, n)
	}
	var ep struct {
		Node struct{ FailureCount, SuccessCount int }
	}
	if err := s.api.do(ctx, `query($id: ID!) { node(id: $id) { ... on Endpoint { failureCount successCount } } }`, map[string]any{"id": id}, &ep); err != nil {
		return err
	}
	var failed struct{ Deliveries struct{ TotalCount int } }
	if err := s.api.do(ctx, `{ deliveries(where: {statusNEQ: SUCCEEDED}) { totalCount } }`, nil, &failed); err != nil {
		return err
	}
	if failed.Deliveries.TotalCount != 0 {
		return fmt.Errorf("%d deliveries did not end SUCCEEDED", failed.Deliveries.TotalCount)
	}
	el := done.Sub(start)
	s.metric("deliveriesPerSec", float64(n)/el.Seconds())
	s.metric("failedAttempts", float64(ep.Node.FailureCount))
	s.metric("failedShare", float64(ep.Node.FailureCount)/float64(n))
	s.note("%d events, 20%% of first attempts answered 503, retried after ~200ms; all SUCCEEDED in %s", n, el.Round(time.Millisecond))
	return nil
}

func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// backup measures what `herald backup` costs publishing on SQLite: on a
// database holding n delivered events, single events are published at a
// steady rate; a few seconds in, `herald backup` copies the database, and
// the publish calls that overlapped the copy are compared with the rest.
func (s *scenario) backup(ctx context.Context, n int) error {
	if strings.Contains(s.h.db, "://") {
		s.note("skipped: herald backup copies SQLite databases (PostgreSQL: pg_dump)")
		return nil
	}
	id, err := s.api.createEndpoint(ctx, "backup", s.rcv.url("/backup"), []string{"*"}, nil)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := s.publishAll(ctx, s.api, "order.created", n, 4); err != nil {
		return err
	}
	if _, err := s.waitSuccesses(ctx, []string{id}, n, start); err != nil {
		return err
	}
	type call struct{ start, end time.Time }
	var (
		mu    sync.Mutex
		calls []call
	)
	interval := time.Second / time.Duration(s.c.rate)
	lead := 3 * time.Second
	if s.c.quick {
		lead = time.Second
	}
	stop := make(chan struct{})
	slots := make(chan int, 1024)
	g, gctx := errgroup.WithContext(ctx)
	begin := time.Now()
	g.Go(func() error {
		defer close(slots)
		for i := 0; ; i++ {
			if d := time.Until(begin.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
			select {
			case <-stop:
				return nil
			case slots <- i:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
	})
	for range 64 {
		g.Go(func() error {
			for i := range slots {
				t0 := time.Now()
				if err := s.api.do(gctx, publishOne, map[string]any{"in": event("order.created", n+i)}, nil); err != nil {
					return fmt.Errorf("publishEvent: %w", err)
				}
				mu.Lock()
				calls = append(calls, call{t0, time.Now()})
				mu.Unlock()
			}
			return nil
		})
	}
	time.Sleep(lead)
	out := filepath.Join(filepath.Dir(s.h.db), "backup.db")
	size, _ := s.h.dbSize()
	bStart := time.Now()
	msg, berr := exec.CommandContext(ctx, s.c.herald, "backup", "--db", s.h.db, "--out", out).CombinedOutput()
	bEnd := time.Now()
	time.Sleep(lead)
	close(stop)
	if err := g.Wait(); err != nil {
		return err
	}
	if berr != nil {
		return fmt.Errorf("herald backup: %v: %s", berr, msg)
	}
	var during, outside []time.Duration
	for _, c := range calls {
		if c.start.Before(bEnd) && c.end.After(bStart) {
			during = append(during, c.end.Sub(c.start))
		} else {
			outside = append(outside, c.end.Sub(c.start))
		}
	}
	if _, err := s.waitSuccesses(ctx, []string{id}, n+len(calls), start); err != nil {
		return err
	}
	d, o := summarize(during), summarize(outside)
	s.metric("dbMB", float64(size)/(1<<20))
	s.metric("backupSeconds", bEnd.Sub(bStart).Seconds())
	s.metric("publishDuringP50Ms", d.P50)
	s.metric("publishDuringP99Ms", d.P99)
	s.metric("publishDuringMaxMs", d.Max)
	s.metric("publishOutsideP50Ms", o.P50)
	s.metric("publishOutsideP99Ms", o.P99)
	s.metric("publishOutsideMaxMs", o.Max)
	s.note("%d events in the database; publishEvent at %d/s, %d calls overlapping the backup, %d not; %s",
		n, s.c.rate, len(during), len(outside), strings.TrimSpace(string(msg)))
	return nil
}
