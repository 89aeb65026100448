// Package metrics exposes Herald's Prometheus metrics: what the delivery
// engine does (events, attempts, deliveries, lag, backlog, in flight,
// disabled endpoints, its database commits), the live feeds, the database
// pools, and Go's and the process's own collectors. Every metric lives in
// the Metrics' own registry, never in Prometheus' default one.
//
// Labels are bounded whatever the number of apps and endpoints: outcomes,
// statuses and destination types only. Per-endpoint numbers are the delivery statistics of
// the GraphQL API (package stats).
//
// Metrics implements dispatch.Metrics. Its counters and histograms are
// resolved once, so the engine's hot paths pay an atomic add or a
// histogram observation per attempt, and never a label lookup.
package metrics

import (
	"context"
	"database/sql"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/dispatch"
)

// Namespace prefixes every Herald metric.
const Namespace = "herald"

// DefaultBacklogEvery is how often at most the backlog is read from the
// database.
const DefaultBacklogEvery = 5 * time.Second

// Config says where the metrics read what they report. Nil functions
// leave their metrics out.
type Config struct {
	// Version is reported by herald_build_info.
	Version string
	// Backlog reads what waits to be sent (dispatch.Engine.Backlog). It is
	// called on a scrape at most every BacklogEvery (default 5s); scrapes
	// in between report the last reading.
	Backlog      func(context.Context) (dispatch.Backlog, error)
	BacklogEvery time.Duration
	// InFlight returns the attempts being sent (dispatch.Engine.InFlight).
	InFlight func() int
	// Live returns the open websocket connections and subscriptions.
	Live func() (connections, subscriptions int)
	// DBs are the database pools to report, by name (such as "writer"
	// and "reader"); a pool listed twice is reported once.
	DBs []DB
	// PgxPool, if set, is the PostgreSQL pool under them, reported as
	// herald_pgxpool_*.
	PgxPool *pgxpool.Pool
	// Destinations are the destination types the engine may send to,
	// each a value of the attempts' destination label (default HTTP).
	Destinations []destination.Type
	// Logger receives errors of reading the backlog (default
	// slog.Default()).
	Logger *slog.Logger
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// DB is a named database pool.
type DB struct {
	Name string
	DB   *sql.DB
}

// Metrics is Herald's metrics registry. Create it with New.
type Metrics struct {
	reg *prometheus.Registry

	eventsPublished prometheus.Counter
	// byType holds the attempt metrics of each destination type; other
	// (unknown) types share one entry.
	byType      map[destination.Type]*typeMetrics
	otherType   *typeMetrics
	succeeded   prometheus.Counter
	failed      prometheus.Counter
	cancelled   prometheus.Counter
	lag         prometheus.Histogram
	disabled    prometheus.Counter
	recBatch    prometheus.Histogram
	recSeconds  prometheus.Histogram
	recFailures prometheus.Counter
	pubBatch    prometheus.Histogram
	pubSeconds  prometheus.Histogram
	pubFailures prometheus.Counter
	// proxyFailures counts attempts the egress proxy failed.
	proxyFailures *prometheus.CounterVec
}

var _ dispatch.Metrics = (*Metrics)(nil)

// typeMetrics are the attempt metrics of one destination type.
type typeMetrics struct {
	attempts [destination.Skipped + 1]prometheus.Counter
	seconds  prometheus.Observer
}

// resultLabel is the result label of an outcome. A delivered attempt is
// "success", as it was before brokers joined HTTP.
func resultLabel(o destination.Outcome) string {
	if o == destination.Delivered {
		return "success"
	}
	return o.String()
}

// New returns the metrics of a Herald server, registered in a registry of
// their own.
func New(cfg Config) *Metrics {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BacklogEvery <= 0 {
		cfg.BacklogEvery = DefaultBacklogEvery
	}
	reg := prometheus.NewRegistry()
	f := factory{reg}
	m := &Metrics{reg: reg}

	m.eventsPublished = f.counter("events_published_total", "Events stored by publishes (publishEvent, publishEvents, and Herald's own webhook.* events).")
	attempts := f.counterVec("attempts_total", "Attempts sent to endpoints, by destination type (http, rabbitmq, kafka, ...) and result: success (2xx, or a publish the broker acknowledged), retryable (timeout, network error, 408, 425, 5xx, an unacknowledged publish), throttled (429, a broker's throttling error), permanent (any other answer, bad credentials, a missing queue or topic), interrupted (cut off by shutdown; the delivery is sent again), deferred (Herald's side failed; no attempt used), skipped (the endpoint's transformation dropped the event: nothing was sent).", "destination", "result")
	seconds := f.histogramVec("attempt_duration_seconds", "Duration of attempts by destination type, from sending the request or publish to reading the response or acknowledgement (or failing).",
		[]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}, "destination")
	types := cfg.Destinations
	if len(types) == 0 {
		types = []destination.Type{destination.HTTP}
	}
	newType := func(name string) *typeMetrics {
		tm := &typeMetrics{seconds: seconds.WithLabelValues(name)}
		for o := destination.Delivered; o <= destination.Skipped; o++ {
			tm.attempts[o] = attempts.WithLabelValues(name, resultLabel(o))
		}
		return tm
	}
	m.byType = make(map[destination.Type]*typeMetrics, len(types))
	for _, t := range types {
		m.byType[t] = newType(strings.ToLower(string(t)))
	}
	m.otherType = newType("other")
	finished := f.counterVec("deliveries_finished_total", "Deliveries that ended, by status: succeeded, failed (after their attempts), cancelled (failed without an attempt: the endpoint was disabled or deleted).", "status")
	m.succeeded = finished.WithLabelValues("succeeded")
	m.failed = finished.WithLabelValues("failed")
	m.cancelled = finished.WithLabelValues("cancelled")
	m.lag = f.histogram("delivery_lag_seconds", "Time from an event's publication (or its deliverAt, if later) to the end of its delivery's successful attempt, retries included.",
		[]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600})
	m.disabled = f.counter("endpoints_disabled_total", "Endpoints Herald disabled after too many consecutive failed deliveries (--disable-after).")
	batches := prometheus.ExponentialBuckets(1, 2, 11) // 1 … 1024
	commits := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5}
	m.recBatch = f.histogram("recorder_batch_size", "Attempt results recorded per transaction (group commit).", batches)
	m.recSeconds = f.histogram("recorder_commit_duration_seconds", "Duration of the recorder's transactions, from begin to commit.", commits)
	m.recFailures = f.counter("recorder_commit_failures_total", "Recorder transactions that failed; their results are kept and tried again.")
	m.pubBatch = f.histogram("publisher_batch_size", "Events stored per publishing transaction (group commit).", batches)
	m.pubSeconds = f.histogram("publisher_commit_duration_seconds", "Duration of the publisher's transactions, from begin to commit.", commits)
	m.pubFailures = f.counter("publisher_commit_failures_total", "Publishing transactions that failed; their callers got an error.")
	m.proxyFailures = f.counterVec("egress_proxy_failures_total", "Attempts that failed because the egress proxy did (refused or dropped the connection, 407, a CONNECT answered with anything but 200), by destination type: deferred, retried without using an attempt, the endpoint not blamed.", "destination")
	for _, t := range types { // exported from the start, so that rules see them rise from zero
		m.proxyFailures.WithLabelValues(strings.ToLower(string(t)))
	}

	info := f.gaugeVec("build_info", "Always 1; the version label is Herald's version.", "version")
	info.WithLabelValues(cfg.Version).Set(1)
	if cfg.InFlight != nil {
		f.gaugeFunc("deliveries_in_flight", "HTTP attempts being sent now.", func() float64 { return float64(cfg.InFlight()) })
	}
	if cfg.Live != nil {
		f.gaugeFunc("live_connections", "Open websocket connections of the live feeds.", func() float64 { c, _ := cfg.Live(); return float64(c) })
		f.gaugeFunc("live_subscriptions", "Active GraphQL subscriptions.", func() float64 { _, s := cfg.Live(); return float64(s) })
	}
	if cfg.Backlog != nil {
		reg.MustRegister(&backlogCollector{cfg: cfg,
			due:    prometheus.NewDesc(Namespace+"_deliveries_due", "Deliveries whose next attempt is due and that nobody is sending: the backlog.", nil, nil),
			oldest: prometheus.NewDesc(Namespace+"_deliveries_due_oldest_seconds", "How long the oldest due delivery has been due (0 without a backlog).", nil, nil),
		})
	}
	seen := map[*sql.DB]bool{}
	for _, d := range cfg.DBs {
		if d.DB == nil || seen[d.DB] {
			continue
		}
		seen[d.DB] = true
		reg.MustRegister(collectors.NewDBStatsCollector(d.DB, d.Name))
	}
	if cfg.PgxPool != nil {
		reg.MustRegister(newPgxPoolCollector(cfg.PgxPool))
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry, to gather from or to add collectors to.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format (or
// OpenMetrics, if the scraper asks for it).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// EventsPublished implements dispatch.Metrics.
func (m *Metrics) EventsPublished(n int) { m.eventsPublished.Add(float64(n)) }

// AttemptFinished implements dispatch.Metrics.
func (m *Metrics) AttemptFinished(t destination.Type, o destination.Outcome, d time.Duration) {
	tm := m.byType[t]
	if tm == nil {
		tm = m.otherType
	}
	if o < 0 || int(o) >= len(tm.attempts) {
		o = destination.Permanent
	}
	tm.attempts[o].Inc()
	if o != destination.Interrupted {
		tm.seconds.Observe(d.Seconds())
	}
}

// DeliveryFinished implements dispatch.Metrics.
func (m *Metrics) DeliveryFinished(status string, lag time.Duration) {
	switch status {
	case "SUCCEEDED":
		m.succeeded.Inc()
		if lag > 0 {
			m.lag.Observe(lag.Seconds())
		}
	case "FAILED":
		m.failed.Inc()
	case dispatch.StatusCancelled:
		m.cancelled.Inc()
	}
}

// EndpointDisabled implements dispatch.Metrics.
func (m *Metrics) EndpointDisabled() { m.disabled.Inc() }

// RecorderCommit implements dispatch.Metrics.
func (m *Metrics) RecorderCommit(results int, d time.Duration, err error) {
	if err != nil {
		m.recFailures.Inc()
		return
	}
	m.recBatch.Observe(float64(results))
	m.recSeconds.Observe(d.Seconds())
}

// ProxyFailed implements dispatch.Metrics.
func (m *Metrics) ProxyFailed(t destination.Type) {
	m.proxyFailures.WithLabelValues(strings.ToLower(string(t))).Inc()
}

// PublisherCommit implements dispatch.Metrics.
func (m *Metrics) PublisherCommit(events int, d time.Duration, err error) {
	if err != nil {
		m.pubFailures.Inc()
		return
	}
	m.pubBatch.Observe(float64(events))
	m.pubSeconds.Observe(d.Seconds())
}

// factory registers metrics under the namespace.
type factory struct{ reg *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) gaugeVec(name, help, label string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, []string{label})
	f.reg.MustRegister(g)
	return g
}

func (f factory) gaugeFunc(name, help string, fn func() float64) {
	f.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, fn))
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}

// backlogCollector reports the backlog, read from the database at most
// every BacklogEvery: a scrape between readings reports the last one.
type backlogCollector struct {
	cfg         Config
	due, oldest *prometheus.Desc

	mu     sync.Mutex
	readAt time.Time
	last   dispatch.Backlog
	ok     bool
}

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.due
	ch <- c.oldest
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	if !c.ok || now.Sub(c.readAt) >= c.cfg.BacklogEvery {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		b, err := c.cfg.Backlog(ctx)
		cancel()
		if err != nil {
			c.cfg.Logger.Error("read the backlog for metrics", "err", err)
		} else {
			c.last, c.readAt, c.ok = b, now, true
		}
	}
	if !c.ok {
		return // never read: report nothing rather than a false zero
	}
	age := 0.0
	if c.last.Due > 0 && !c.last.Oldest.IsZero() {
		age = max(0, now.Sub(c.last.Oldest).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(c.due, prometheus.GaugeValue, float64(c.last.Due))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age)
}
