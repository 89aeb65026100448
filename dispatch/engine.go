package dispatch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/heraldhq/herald/catalog"
	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/destination/httpdest"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/secret"
	"github.com/heraldhq/herald/transform"
	"github.com/heraldhq/herald/webhook"
)

// Config configures an Engine. Zero fields take the documented defaults.
type Config struct {
	// Driver is the storage engine (required): NewSQLiteDriver for
	// Herald's SQLite store.
	Driver Driver
	// Client reads endpoints, deliveries and event types through ent, for
	// configuration and the API's operations.
	Client *ent.Client
	// Catalog checks published event types and payloads.
	Catalog *catalog.Catalog
	// MaxPayload is the size limit of a published payload in bytes
	// (default 256 KiB).
	MaxPayload int
	// Policy is the destination policy every connection is checked
	// against.
	Policy destination.Policy
	// Proxy, if set, is the egress proxy every outbound connection goes
	// through (see destination.Env.Proxy).
	Proxy *url.URL
	// Secrets opens the endpoints' secrets (required).
	Secrets *secret.Keyring
	// Destinations are the destination types the engine sends to
	// (default: HTTP only).
	Destinations *destination.Registry
	// Transforms runs endpoints' transformations (default: the default
	// limits).
	Transforms *transform.Engine
	// IdleConnTimeout closes connections to endpoints and brokers unused
	// this long (default 90s).
	IdleConnTimeout time.Duration
	// Workers is the most requests in flight at once (default 128).
	Workers int
	// PerEndpoint is the most requests in flight to one endpoint
	// (default 32).
	PerEndpoint int
	// BatchSize is the most deliveries claimed at once (default 256).
	BatchSize int
	// Lease is how long a claimed or handed-off delivery belongs to this
	// engine (default 1m). A delivery is only sent while at least its
	// timeout plus a margin of lease remains; a driver whose leases live
	// in the database makes the delivery due again once its lease expires
	// (a process that died), so it must exceed the longest timeout.
	Lease time.Duration
	// PollInterval is how often the engine looks for due retries when it
	// is not woken by a publish (default 250ms).
	PollInterval time.Duration
	// DisableAfter is how many consecutive failed deliveries disable an
	// endpoint (default 20; negative: never).
	DisableAfter int
	// MaxResponseBody is how much of a response body an attempt keeps
	// (default 64 KiB).
	MaxResponseBody int
	// UserAgent of every request (default "Herald/dev").
	UserAgent string
	// ShutdownGrace is how long shutdown lets in-flight attempts finish
	// before interrupting them (default 10s).
	ShutdownGrace time.Duration
	// MetaWindow is how often at most one endpoint's failed deliveries
	// are reported by a webhook.failed event; failures within the window
	// are gathered into the next one (default 1m).
	MetaWindow time.Duration
	// Logger receives engine logs (default slog.Default()).
	Logger *slog.Logger
	// Observer is told about committed changes (default: nobody).
	Observer Observer
	// Peers are the other engines sharing the store (replicas), told about
	// deliveries they may claim and endpoints that changed (default:
	// none).
	Peers Peers
	// Metrics receives the engine's measurements (default: nobody).
	Metrics Metrics
	// TracerProvider, if set, traces publishes, attempts (HTTP client
	// spans linked to their publish, whose traceparent each event stores
	// and each request carries) and the recorder's commits. Nil: nothing
	// is traced, stored or sent.
	TracerProvider trace.TracerProvider
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// Rand returns uniform random numbers in [0, 1) for retry jitter.
	Rand func() float64
}

func (c *Config) setDefaults() error {
	if c.Driver == nil || c.Client == nil || c.Secrets == nil {
		return errors.New("dispatch: Config.Driver, Config.Client and Config.Secrets are required")
	}
	if c.Catalog == nil {
		c.Catalog = catalog.New(c.Client, 0)
	}
	setDefault(&c.MaxPayload, DefaultMaxPayload)
	setDefault(&c.Workers, 128)
	setDefault(&c.PerEndpoint, 32)
	setDefault(&c.BatchSize, 256)
	setDefault(&c.Lease, time.Minute)
	setDefault(&c.PollInterval, 250*time.Millisecond)
	setDefault(&c.DisableAfter, 20)
	setDefault(&c.MaxResponseBody, 64<<10)
	setDefault(&c.UserAgent, "Herald/dev")
	setDefault(&c.ShutdownGrace, 10*time.Second)
	setDefault(&c.MetaWindow, time.Minute)
	setDefault(&c.IdleConnTimeout, 90*time.Second)
	if c.Transforms == nil {
		c.Transforms = transform.New(transform.Limits{})
	}
	if c.Destinations == nil {
		c.Destinations = destination.NewRegistry(httpdest.Spec())
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	if c.Peers == nil {
		c.Peers = noPeers{}
	}
	if c.Metrics == nil {
		c.Metrics = nopMetrics{}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = mrand.Float64
	}
	if c.Lease < webhook.MaxTimeout+leaseMargin {
		return fmt.Errorf("dispatch: lease %s is too short: it must exceed the longest timeout (%s) by %s", c.Lease, webhook.MaxTimeout, leaseMargin)
	}
	return nil
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// leaseMargin is the time a worker keeps in hand after an attempt's timeout
// to record its result before the lease expires.
const leaseMargin = 5 * time.Second

// configTTL bounds how long the engine trusts a loaded endpoint
// configuration; changes made through this process take effect at once.
const configTTL = 5 * time.Second

// Engine publishes events and sends their deliveries. Create it with New,
// run it with Start, stop it with Drain and Close.
//
// It is made of parts that each own their state: the publisher commits
// publishes in groups; the scheduler (scheduler.go) claims due deliveries
// and hands them to a fixed pool of workers within its limits; workers
// send; the recorder (recorder.go) commits results in batches; the
// canceller fails the queued deliveries of disabled endpoints in bounded
// batches; endpoint configuration lives in endpointConfigs; the window
// bounds what the engine holds. Every statement goes through the Driver.
type Engine struct {
	cfg     Config
	log     *slog.Logger
	worker  string
	drivers *destination.Drivers
	window  *window
	configs *endpointConfigs
	subs    *subscriptions
	// shared reports a database other engines may write to (not an
	// in-memory leaser's): cached subscribers are checked before use.
	shared  bool
	sched   *scheduler
	rec     *recorder
	cancels *canceller
	metas   *metaCoalescer
	// certStop ends the watch for expiring client certificates, which
	// closes certDone when it has.
	certStop, certDone chan struct{}
	// stopRefresh ends the reading of endpoint configurations ahead of
	// their expiry (endpointConfigs.refreshAhead), which closes
	// refreshDone when it has.
	stopRefresh context.CancelFunc
	refreshDone chan struct{}
	tel         *telemetry

	work      chan *job
	workersWG sync.WaitGroup
	// sendCtx is cancelled to interrupt attempts in flight at shutdown.
	sendCtx     context.Context
	cancelSends context.CancelFunc

	publishes chan *publishReq
	pubDone   chan struct{}
	pubMu     sync.RWMutex // guards pubClosed against sends to publishes
	pubClosed bool
	recMu     sync.RWMutex // guards recClosed against sends to rec.in
	recClosed bool

	started   atomic.Bool
	startOnce sync.Once
	drainOnce sync.Once
	closeOnce sync.Once
	drainErr  error
}

// New returns an Engine. It does not start sending until Start.
func New(cfg Config) (*Engine, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	e := &Engine{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "dispatch"),
		worker:    "w-" + hex.EncodeToString(id[:]),
		window:    newWindow(max(2*cfg.Workers, cfg.BatchSize), queueFactor*cfg.PerEndpoint),
		subs:      newSubscriptions(5*time.Second, cfg.Now),
		shared:    !inMemory(cfg.Driver),
		work:      make(chan *job, cfg.Workers),
		publishes: make(chan *publishReq, 1024),
		pubDone:   make(chan struct{}),
		tel:       newTelemetry(cfg.Metrics, cfg.TracerProvider),
	}
	e.drivers = cfg.Destinations.Open(destination.Env{
		Policy: cfg.Policy, Proxy: cfg.Proxy, UserAgent: cfg.UserAgent, MaxResponseBody: cfg.MaxResponseBody, Concurrency: cfg.Workers,
		IdleTimeout: cfg.IdleConnTimeout, Now: cfg.Now, Logger: e.log,
	})
	e.configs = newEndpointConfigs(configTTL, cfg.Now, loadEndpoints(cfg.Client),
		func(ep *ent.Endpoint) (*endpointConfig, error) {
			return newEndpointConfig(ep, cfg.Secrets, e.drivers, cfg.Destinations, cfg.Transforms)
		})
	e.sendCtx, e.cancelSends = context.WithCancel(context.Background())
	e.sched = newScheduler(schedConfig{
		Worker: e.worker, Workers: cfg.Workers, PerEndpoint: cfg.PerEndpoint, BatchSize: cfg.BatchSize,
		Lease: cfg.Lease, PollInterval: cfg.PollInterval,
	}, cfg.Driver, e.configs, e.window, e.log, cfg.Now, e.work)
	rc := recorderConfig{DisableAfter: cfg.DisableAfter, Now: cfg.Now, Rand: cfg.Rand, Outstanding: e.window.held, Free: e.window.free}
	if !e.shared {
		// On SQLite a commit costs CPU by the page. On PostgreSQL
		// lingering cut CPU too, but publish → arrival p99 at a steady
		// 500/s rose 1.3× in interleaved runs, so there results commit
		// as they come.
		rc.Linger = steadyLinger
	}
	e.rec = newRecorder(rc, cfg.Driver, e.log, e.window.max+64)
	e.rec.committed = e.committed
	e.rec.tel = e.tel
	e.rec.released = e.sched.release
	e.sched.canCommit = e.rec.canCommit
	e.sched.record = e.record
	e.sched.released = func(eps []string) { e.cfg.Peers.Wake(eps...) }
	e.cancels = newCanceller(cfg.Driver, e.log, cfg.Now, cfg.Observer)
	e.cancels.metrics = cfg.Metrics
	e.metas = newMetaCoalescer(cfg.MetaWindow, cfg.Now, e.publishMeta)
	return e, nil
}

// The scheduler holds at most queueFactor × PerEndpoint deliveries of one
// endpoint (queued and in flight), so an endpoint's queue refills while
// its requests are in flight.
const queueFactor = 2

// Start launches the engine's goroutines. It returns at once; the engine
// runs until Close.
func (e *Engine) Start() {
	e.startOnce.Do(func() {
		e.started.Store(true)
		for range e.cfg.Workers {
			e.workersWG.Add(1)
			go e.runWorker()
		}
		go e.rec.run()
		go e.sched.run(context.Background())
		go e.runPublisher()
		go e.cancels.run()
		go e.metas.run()
		e.certStop, e.certDone = make(chan struct{}), make(chan struct{})
		go e.watchCertificates(e.certStop, e.certDone)
		var refreshCtx context.Context
		refreshCtx, e.stopRefresh = context.WithCancel(context.Background())
		e.refreshDone = make(chan struct{})
		go func() {
			defer close(e.refreshDone)
			e.configs.refreshAhead(refreshCtx)
		}()
		e.Notify()
	})
}

// Drain stops taking deliveries: queued ones are released (due again in
// the store) and publishing no longer hands new ones to the scheduler. It
// lets the attempts in flight finish for up to the shutdown grace (or
// until ctx ends), then interrupts them: an interrupted attempt is not
// recorded and its delivery is simply due again. Publishing goes on until
// Close. Drain returns once no attempt is in flight.
func (e *Engine) Drain(ctx context.Context) error {
	e.Quiesce()
	e.drainOnce.Do(func() {
		if !e.started.Load() {
			return
		}
		close(e.sched.stop)
		grace := time.NewTimer(e.cfg.ShutdownGrace)
		defer grace.Stop()
		select {
		case <-e.sched.stopped:
		case <-grace.C:
			e.log.Warn("shutdown grace expired; interrupting attempts in flight")
			e.cancelSends()
			<-e.sched.stopped
		case <-ctx.Done():
			e.cancelSends()
			<-e.sched.stopped
			e.drainErr = ctx.Err()
		}
		close(e.work)
		e.workersWG.Wait()
	})
	return e.drainErr
}

// Quiesce makes the engine take no more deliveries from now on: claims
// stop and publishing no longer hands deliveries over (they wait in the
// store). Drain calls it; call it first to stop taking deliveries at a
// precise moment without waiting for the attempts in flight.
func (e *Engine) Quiesce() { e.window.close() }

// Close drains the engine if Drain was not called, stops publishing
// (queued publishes are committed; their deliveries wait in the store for
// the next start), records the remaining results (waiting for the store
// at most until ctx ends), and stops.
func (e *Engine) Close(ctx context.Context) error {
	err := e.Drain(ctx)
	e.closeOnce.Do(func() {
		if !e.started.Load() {
			_ = e.drivers.Close()
			return
		}
		if dl, ok := ctx.Deadline(); ok {
			e.rec.drainBy.Store(&dl)
		} else {
			dl := time.Now().Add(e.cfg.ShutdownGrace)
			e.rec.drainBy.Store(&dl)
		}
		e.recMu.Lock()
		e.recClosed = true
		close(e.rec.in)
		e.recMu.Unlock()
		<-e.rec.done
		if e.certStop != nil {
			close(e.certStop)
			<-e.certDone
		}
		if e.stopRefresh != nil {
			e.stopRefresh()
			<-e.refreshDone
		}
		e.metas.close() // publishes what it gathered
		e.pubMu.Lock()
		e.pubClosed = true
		close(e.publishes)
		e.pubMu.Unlock()
		<-e.pubDone
		e.cancels.close()
		e.cancelSends()
		if err := e.drivers.Close(); err != nil {
			e.log.Warn("close destinations", "err", err)
		}
	})
	return err
}

// Transforms returns the engine that runs endpoints' transformations.
func (e *Engine) Transforms() *transform.Engine { return e.cfg.Transforms }

// Notify wakes the engine to look for due deliveries now: of the given
// endpoints, or of every endpoint if none is given. Publishing and retry
// mutations call it after they commit.
func (e *Engine) Notify(endpointIDs ...string) { e.sched.notify(endpointIDs...) }

// EndpointChanged tells the engine that an endpoint of an app was created
// or changed (after the change is committed), so that publishing and
// sending use its new configuration.
func (e *Engine) EndpointChanged(appID, id string) {
	e.PeerEndpoint(EndpointUpdated, appID, id)
	e.cfg.Peers.Endpoint(EndpointUpdated, appID, id)
}

// EndpointEnabled tells the engine that an endpoint of an app is active
// again.
func (e *Engine) EndpointEnabled(appID, id string) {
	e.PeerEndpoint(EndpointReenabled, appID, id)
	e.cfg.Peers.Endpoint(EndpointReenabled, appID, id)
}

// EndpointDisabled tells the engine that an endpoint of an app was
// disabled or deleted (after the change is committed). Nothing more is
// sent to it but the attempts already in flight, which finish and are not
// retried; its queued deliveries fail with the reason, in bounded
// batches: the first few thousand before EndpointDisabled returns (so the
// caller sees them failed), any more in the background.
func (e *Engine) EndpointDisabled(ctx context.Context, appID, id, reason string) {
	e.endpointOff(appID, id)
	if !e.cancels.cancel(ctx, id, reason, syncCancelBatches) {
		e.cancels.enqueue(id, reason)
	}
}

// syncCancelBatches is how many cancelling batches EndpointDisabled runs
// itself before leaving the rest to the canceller.
const syncCancelBatches = 10

// EndpointNotice is a change of an endpoint, as engines sharing a store
// tell each other.
type EndpointNotice byte

// Endpoint notices.
const (
	// EndpointUpdated: created, or its configuration changed.
	EndpointUpdated EndpointNotice = 'c'
	// EndpointTurnedOff: disabled or deleted.
	EndpointTurnedOff EndpointNotice = 'd'
	// EndpointReenabled: active again.
	EndpointReenabled EndpointNotice = 'e'
)

// Peers are the other engines sharing the store: replicas of Herald on one
// PostgreSQL database. An engine tells them what they should act on; they
// apply it with Engine.PeerEndpoint and Engine.Notify.
type Peers interface {
	// Wake: deliveries of these endpoints may be claimed now.
	Wake(endpointIDs ...string)
	// Endpoint: an endpoint changed (appID may be empty).
	Endpoint(n EndpointNotice, appID, endpointID string)
}

type noPeers struct{}

func (noPeers) Wake(...string)                          {}
func (noPeers) Endpoint(EndpointNotice, string, string) {}

// PeerEndpoint applies an endpoint change to this engine's caches without
// telling the peers: the changes another replica made, and this one's own.
// The other replica cancels a disabled endpoint's queued deliveries; this
// one only stops sending to it. Only the app's cached endpoints are
// dropped, and only its publishes being stored are matched again; an
// empty appID (from a replica of a version that did not send it) drops
// every app's.
func (e *Engine) PeerEndpoint(n EndpointNotice, appID, id string) {
	switch n {
	case EndpointUpdated:
		e.configs.changed(id)
	case EndpointTurnedOff:
		e.configs.disabled(id)
	case EndpointReenabled:
		e.configs.enabled(id)
		defer e.Notify(id)
	default:
		return
	}
	e.subs.invalidate(appID)
}

// PeersReset drops what the engine caches about endpoints and looks for
// due deliveries of every endpoint: notices from peers may have been
// missed.
func (e *Engine) PeersReset() {
	e.configs.reset()
	e.subs.invalidate("")
	e.Notify()
}

// wake looks for due deliveries of endpoints here and on the peers.
func (e *Engine) wake(endpointIDs ...string) {
	e.Notify(endpointIDs...)
	e.cfg.Peers.Wake(endpointIDs...)
}

// endpointOff stops sending to a disabled or deleted endpoint of an app,
// here and on the peers.
func (e *Engine) endpointOff(appID, id string) {
	e.PeerEndpoint(EndpointTurnedOff, appID, id)
	e.cfg.Peers.Endpoint(EndpointTurnedOff, appID, id)
}

// runWorker sends jobs until the work channel closes.
func (e *Engine) runWorker() {
	defer e.workersWG.Done()
	for j := range e.work {
		r := &result{job: j}
		switch {
		case e.configs.isInactive(j.EndpointID) && (j.trigger != "TEST" || j.attempt.Endpoint.Deleted):
			// Disabled or deleted meanwhile; inactive endpoints still
			// receive tests.
			r.cancelled = true
		case e.cfg.Now().Add(j.attempt.Endpoint.Timeout + leaseMargin).After(j.Until):
			// Waited too long in the endpoint's queue: sending now could
			// outlive the lease and race another worker.
			r.release = true
		default:
			e.cfg.Observer.DeliveryChanged(DeliveryChange{
				Kind: AttemptStarted, AppID: j.AppID, DeliveryID: j.DeliveryID, EventID: j.EventID,
				EndpointID: j.EndpointID, EventType: j.EventType, Status: "SENDING",
				Attempt: j.attempt.Number, At: e.cfg.Now(),
			})
			r.resp = e.sendAttempt(j)
		}
		if j.counted {
			e.window.leave(j.EndpointID)
			j.left = true
		}
		e.rec.in <- r
		d := doneMsg{endpointID: j.EndpointID, requested: r.resp != nil, seq: j.flowSeq}
		if r.resp != nil && r.resp.Outcome != destination.Interrupted && r.resp.Outcome != destination.Deferred && r.resp.Outcome != destination.Skipped {
			d.sent, d.outcome, d.overloaded, d.pause = true, r.resp.Outcome, r.resp.Overloaded, pauseFor(r.resp, j.attempt.Endpoint)
		}
		e.sched.done <- d
	}
}

// pauseFor returns how long an answer asks its whole endpoint to be left
// alone (an HTTP Retry-After on 429 or 503), capped like any wait by the
// endpoint's retry policy (0: no pause).
func pauseFor(resp *destination.Result, ep *endpointConfig) time.Duration {
	if resp.Pause <= 0 {
		return 0
	}
	return min(resp.Pause, ep.Retry.MaxDelay, maxPause)
}

// Flow returns an endpoint's current pace as this engine sends to it: its
// rate limit, and the concurrency and rate its answers imposed. ok is false
// when the engine has not sent to it lately: it would go at full pace, as
// st says, within its configured limits.
func (e *Engine) Flow(endpointID string) (st FlowState, ok bool) {
	v, ok := e.sched.flowStates.Load(endpointID)
	if !ok {
		return FlowState{Concurrency: e.cfg.PerEndpoint, MaxConcurrency: e.cfg.PerEndpoint}, false
	}
	return v.(FlowState), true
}

// record hands a result from outside the worker pool to the recorder.
func (e *Engine) record(r *result) {
	if err := e.submit(r); err != nil && r.done == nil {
		e.sched.release([]*job{r.job})
	}
}

// submit hands a result to the recorder unless it is closed.
func (e *Engine) submit(r *result) error {
	e.recMu.RLock()
	defer e.recMu.RUnlock()
	if e.recClosed {
		return errEngineClosed
	}
	e.rec.in <- r
	return nil
}

// committed applies what a committed batch of results changed beyond the
// store: room in the window, the waiting test sends, the live feeds,
// disabled endpoints and meta-events.
func (e *Engine) committed(out *commitOutput) {
	for i, res := range out.results {
		releaseJob(e.window, res.job)
		if res.done != nil {
			res.done <- out.outcomes[i]
		}
	}
	e.sched.poke() // room freed up
	reportCommitted(e.tel.metrics, out)
	for _, c := range out.changes {
		e.cfg.Observer.DeliveryChanged(c)
	}
	for _, c := range out.endpoints {
		e.cfg.Observer.EndpointChanged(c)
	}
	for _, d := range out.disabled {
		// Off the recorder: its queued deliveries fail in the background.
		e.endpointOff(d.AppID, d.ID)
		e.cancels.enqueue(d.ID, "endpoint "+d.reason)
		e.metas.disabled(d)
	}
	for _, f := range out.failures {
		e.metas.failed(f)
	}
	for _, p := range out.paused {
		// The others read the pause with the endpoint's configuration.
		e.cfg.Peers.Endpoint(EndpointUpdated, p.AppID, p.EndpointID)
		e.cfg.Observer.EndpointChanged(p)
	}
}
