package dispatch

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/catalog"
	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/endpoint"
	"github.com/heraldhq/herald/ent/event"
	"github.com/heraldhq/herald/ent/schema"
	"github.com/heraldhq/herald/tenant"
	"github.com/heraldhq/herald/webhook"
)

// Config configures an Engine. Zero fields take the documented defaults.
type Config struct {
	// Client reads endpoints and events and writes the rare changes that
	// are not on the hot path (auto-disable, meta-events).
	Client *ent.Client
	// DB is the writer connection the hot path records results through.
	DB *sql.DB
	// Claimer leases due deliveries (default SQLClaimer over DB).
	Claimer Claimer
	// Catalog checks published event types and payloads.
	Catalog *catalog.Catalog
	// MaxPayload is the size limit of a published payload in bytes
	// (default 256 KiB).
	MaxPayload int
	// Policy is the destination policy every connection is checked
	// against.
	Policy destination.Policy
	// Workers is the most requests in flight at once (default 128).
	Workers int
	// PerEndpoint is the most requests in flight to one endpoint
	// (default 32).
	PerEndpoint int
	// BatchSize is the most deliveries claimed at once (default 256).
	BatchSize int
	// Lease is how long a claim lasts before another worker may take the
	// delivery over (default 1m). A claimed delivery is only sent while at
	// least its timeout plus a margin of lease remains.
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
	// ShutdownGrace is how long Close lets in-flight attempts finish
	// (default 10s).
	ShutdownGrace time.Duration
	// Logger receives engine logs (default slog.Default()).
	Logger *slog.Logger
	// Observer is told about committed changes (default: nobody).
	Observer Observer
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// Rand returns uniform random numbers in [0, 1) for retry jitter.
	Rand func() float64
}

func (c *Config) setDefaults() error {
	if c.Client == nil || c.DB == nil {
		return errors.New("dispatch: Config.Client and Config.DB are required")
	}
	if c.Catalog == nil {
		c.Catalog = catalog.New(c.Client, 0)
	}
	setDefault(&c.MaxPayload, DefaultMaxPayload)
	if c.Claimer == nil {
		c.Claimer = SQLClaimer{DB: c.DB}
	}
	setDefault(&c.Workers, 128)
	setDefault(&c.PerEndpoint, 32)
	setDefault(&c.BatchSize, 256)
	setDefault(&c.Lease, time.Minute)
	setDefault(&c.PollInterval, 250*time.Millisecond)
	setDefault(&c.DisableAfter, 20)
	setDefault(&c.MaxResponseBody, 64<<10)
	setDefault(&c.UserAgent, "Herald/dev")
	setDefault(&c.ShutdownGrace, 10*time.Second)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
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

// Engine sends due deliveries. Create it with New, run it with Start, stop
// it with Close.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	sender *sender
	rec    *recorder
	worker string

	wake    chan struct{}
	work    chan *job
	done    chan string
	results chan *result

	// outstanding counts claimed deliveries not yet recorded or released;
	// it never exceeds maxOut, which bounds memory and the results queue.
	outstanding atomic.Int64
	maxOut      int64

	stopClaiming chan struct{}
	schedDone    chan struct{}
	workersWG    sync.WaitGroup
	recDone      chan struct{}
	sendCtx      context.Context
	cancelSends  context.CancelFunc
	// inactive holds the IDs of endpoints known to be disabled or
	// deleted; workers drop their queued jobs instead of sending them.
	inactive sync.Map

	submitMu  sync.RWMutex // guards closed against sends to results
	closed    bool
	startOnce sync.Once
	closeOnce sync.Once
	started   atomic.Bool
}

// job is a claimed delivery on its way through the engine.
type job struct {
	Job
	attempt   attempt
	trigger   string // SCHEDULED, MANUAL_RETRY or TEST
	claimedBy string
}

// New returns an Engine. It does not start sending until Start.
func New(cfg Config) (*Engine, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	maxOut := max(2*cfg.Workers, cfg.BatchSize)
	e := &Engine{
		cfg:          cfg,
		log:          cfg.Logger.With("component", "dispatch"),
		sender:       newSender(cfg.Policy, cfg.UserAgent, cfg.MaxResponseBody, cfg.PerEndpoint, cfg.Now),
		worker:       "w-" + hex.EncodeToString(id[:]),
		wake:         make(chan struct{}, 1),
		work:         make(chan *job, cfg.Workers),
		done:         make(chan string, cfg.Workers),
		results:      make(chan *result, maxOut+64),
		maxOut:       int64(maxOut),
		stopClaiming: make(chan struct{}),
		schedDone:    make(chan struct{}),
		recDone:      make(chan struct{}),
	}
	e.rec = newRecorder(e)
	e.sendCtx, e.cancelSends = context.WithCancel(context.Background())
	return e, nil
}

// SetEndpointActive tells the engine that an endpoint was enabled, or
// disabled or deleted. Deliveries of a disabled endpoint that are claimed
// but not yet sent are then failed instead of sent.
func (e *Engine) SetEndpointActive(id string, active bool) {
	if active {
		e.inactive.Delete(id)
	} else {
		e.inactive.Store(id, true)
	}
}

// Notify wakes the engine to look for due deliveries now. Publishing and
// retry mutations call it after they commit.
func (e *Engine) Notify() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Start launches the engine's goroutines. It returns at once; the engine
// runs until Close.
func (e *Engine) Start() {
	e.startOnce.Do(func() {
		e.started.Store(true)
		if r, ok := e.cfg.Claimer.(Recoverer); ok {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			n, err := r.RecoverAbandoned(ctx, e.cfg.Now().UTC())
			cancel()
			switch {
			case err != nil:
				e.log.Error("recover deliveries of a previous run; they are retried when their leases expire", "err", err)
			case n > 0:
				e.log.Info("recovered deliveries left in flight by a previous run", "count", n)
			}
		}
		for range e.cfg.Workers {
			e.workersWG.Add(1)
			go e.runWorker()
		}
		go e.rec.run()
		go e.schedule()
		e.Notify()
	})
}

// Close stops claiming, lets in-flight attempts finish for up to the
// shutdown grace (or until ctx ends), records their results, and returns
// claimed deliveries that were not attempted to the queue.
func (e *Engine) Close(ctx context.Context) error {
	var err error
	e.closeOnce.Do(func() {
		if !e.started.Load() {
			e.sender.close()
			return
		}
		close(e.stopClaiming)
		grace := time.NewTimer(e.cfg.ShutdownGrace)
		defer grace.Stop()
		select {
		case <-e.schedDone:
		case <-grace.C:
			e.log.Warn("shutdown grace expired; interrupting in-flight attempts")
			e.cancelSends()
			<-e.schedDone
		case <-ctx.Done():
			e.cancelSends()
			<-e.schedDone
			err = ctx.Err()
		}
		close(e.work)
		e.workersWG.Wait()
		e.submitMu.Lock()
		e.closed = true
		close(e.results)
		e.submitMu.Unlock()
		<-e.recDone
		e.cancelSends()
		e.sender.close()
	})
	return err
}

// runWorker sends jobs until the work channel closes.
func (e *Engine) runWorker() {
	defer e.workersWG.Done()
	for j := range e.work {
		r := &result{job: j}
		if _, off := e.inactive.Load(j.EndpointID); off {
			r.cancelled = true
		} else if e.cfg.Now().Add(j.attempt.Endpoint.Timeout + leaseMargin).After(j.LeaseUntil) {
			// Waited too long in the endpoint's queue: sending now could
			// outlive the lease and race another worker.
			r.release = true
		} else {
			e.cfg.Observer.DeliveryChanged(DeliveryChange{
				Kind: AttemptStarted, AppID: j.AppID, DeliveryID: j.DeliveryID, EventID: j.EventID,
				EndpointID: j.EndpointID, EventType: j.EventType, Status: "SENDING",
				Attempt: j.attempt.Number, At: e.cfg.Now(),
			})
			r.resp = e.sender.send(e.sendCtx, &j.attempt)
		}
		e.results <- r
		e.done <- j.EndpointID
	}
}

// endpointState is the scheduler's view of one endpoint.
type endpointState struct {
	inflight int
	queue    []*job
}

// schedule claims due deliveries and hands them to workers, keeping at most
// Workers requests in flight overall and PerEndpoint per endpoint. It runs
// in one goroutine and owns all scheduling state.
func (e *Engine) schedule() {
	defer close(e.schedDone)
	var (
		busy      int
		eps       = make(map[string]*endpointState)
		waiting   []string // endpoints with queued jobs, round-robin order
		configs   = make(map[string]*endpointConfig)
		wanted    = true
		maxOut    = e.maxOut
		ticker    = time.NewTicker(e.cfg.PollInterval)
		stopping  = false
		stopClaim = e.stopClaiming
	)
	defer ticker.Stop()

	pump := func() {
		for busy < e.cfg.Workers && len(waiting) > 0 {
			progressed := false
			next := waiting[:0]
			for _, id := range waiting {
				st := eps[id]
				if busy < e.cfg.Workers && st.inflight < e.cfg.PerEndpoint && len(st.queue) > 0 {
					j := st.queue[0]
					st.queue[0] = nil
					st.queue = st.queue[1:]
					st.inflight++
					busy++
					e.work <- j
					progressed = true
				}
				if len(st.queue) > 0 {
					next = append(next, id)
				}
			}
			waiting = next
			if !progressed {
				break
			}
		}
	}

	for {
		if stopping {
			if busy == 0 {
				return
			}
		} else if wanted {
			free := maxOut - e.outstanding.Load()
			if free >= int64(min(e.cfg.BatchSize, 16)) || e.outstanding.Load() == 0 {
				limit := int(min(free, int64(e.cfg.BatchSize)))
				var skip []string
				for id, st := range eps {
					if len(st.queue) >= e.cfg.PerEndpoint {
						skip = append(skip, id)
					}
				}
				jobs, err := e.claim(limit, skip, configs)
				if err != nil {
					e.log.Error("claim deliveries", "err", err)
					wanted = false
				} else {
					wanted = len(jobs) == limit
					for _, j := range jobs {
						st := eps[j.EndpointID]
						if st == nil {
							st = &endpointState{}
							eps[j.EndpointID] = st
						}
						if len(st.queue) == 0 {
							waiting = append(waiting, j.EndpointID)
						}
						st.queue = append(st.queue, j)
					}
					pump()
				}
			}
		}
		select {
		case <-e.wake:
			wanted = true
		case <-ticker.C:
			wanted = true
			for id, st := range eps {
				if st.inflight == 0 && len(st.queue) == 0 {
					delete(eps, id)
				}
			}
		case id := <-e.done:
			busy--
			if st := eps[id]; st != nil {
				st.inflight--
			}
			pump()
		case <-stopClaim:
			stopping, stopClaim = true, nil
			var ids []string
			for _, st := range eps {
				for _, j := range st.queue {
					ids = append(ids, j.DeliveryID)
				}
				st.queue = nil
			}
			waiting = nil
			if len(ids) > 0 {
				ctx, cancel := context.WithTimeout(tenant.System(context.Background()), 10*time.Second)
				if err := e.cfg.Claimer.Release(ctx, e.worker, ids, e.cfg.Now().UTC()); err != nil {
					e.log.Error("release deliveries on shutdown", "count", len(ids), "err", err)
				}
				cancel()
				e.outstanding.Add(-int64(len(ids)))
			}
		}
	}
}

// claim leases due deliveries and prepares them for sending. Deliveries of
// endpoints that are disabled or deleted are finished at once without an
// attempt.
func (e *Engine) claim(limit int, skip []string, configs map[string]*endpointConfig) ([]*job, error) {
	ctx, cancel := context.WithTimeout(tenant.System(context.Background()), 30*time.Second)
	defer cancel()
	now := e.cfg.Now().UTC()
	claimed, err := e.cfg.Claimer.Claim(ctx, e.worker, now, e.cfg.Lease, limit, skip)
	if err != nil || len(claimed) == 0 {
		return nil, err
	}
	e.outstanding.Add(int64(len(claimed)))
	jobs, cancelled, err := e.prepare(ctx, claimed, configs)
	if err != nil {
		// Leave the leases to expire: the deliveries become due again.
		e.outstanding.Add(-int64(len(claimed)))
		return nil, err
	}
	for _, j := range cancelled {
		e.results <- &result{job: j, cancelled: true}
	}
	return jobs, nil
}

// prepare loads the endpoints and events of claimed deliveries. It returns
// the jobs to send and those to cancel because their endpoint is gone.
func (e *Engine) prepare(ctx context.Context, claimed []Job, configs map[string]*endpointConfig) (send, cancelled []*job, err error) {
	epIDs := make([]string, 0, 4)
	evIDs := make([]string, 0, len(claimed))
	seenEp := make(map[string]bool, 4)
	seenEv := make(map[string]bool, len(claimed))
	for _, c := range claimed {
		if !seenEp[c.EndpointID] {
			seenEp[c.EndpointID] = true
			epIDs = append(epIDs, c.EndpointID)
		}
		if !seenEv[c.EventID] {
			seenEv[c.EventID] = true
			evIDs = append(evIDs, c.EventID)
		}
	}
	ectx := schema.IncludeDeleted(ctx)
	endpoints, err := e.cfg.Client.Endpoint.Query().Where(endpoint.IDIn(epIDs...)).All(ectx)
	if err != nil {
		return nil, nil, fmt.Errorf("load endpoints: %w", err)
	}
	for _, ep := range endpoints {
		if ep.IsActive && ep.DeletedAt == nil {
			e.inactive.Delete(ep.ID)
		} else {
			e.inactive.Store(ep.ID, true)
		}
		if c, ok := configs[ep.ID]; ok && c.UpdatedAt.Equal(ep.UpdatedAt) && c.Active == ep.IsActive {
			continue
		}
		c, err := newEndpointConfig(rowOf(ep))
		if err != nil {
			return nil, nil, err
		}
		configs[ep.ID] = c
	}
	msgs := make(map[string]*message, len(evIDs))
	for len(evIDs) > 0 {
		n := min(len(evIDs), 500)
		evs, err := e.cfg.Client.Event.Query().
			Where(event.IDIn(evIDs[:n]...)).
			Select(event.FieldEventType, event.FieldPayload, event.FieldCreatedAt).
			All(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("load events: %w", err)
		}
		for _, ev := range evs {
			msgs[ev.ID] = &message{ID: ev.ID, Type: ev.EventType, Body: renderEnvelope(ev.ID, ev.EventType, ev.CreatedAt, ev.Payload)}
		}
		evIDs = evIDs[n:]
	}
	send = make([]*job, 0, len(claimed))
	for _, c := range claimed {
		ep, msg := configs[c.EndpointID], msgs[c.EventID]
		j := &job{Job: c, trigger: c.Trigger, claimedBy: e.worker}
		switch {
		case ep == nil || msg == nil:
			e.log.Error("claimed delivery without endpoint or event", "delivery_id", c.DeliveryID)
			cancelled = append(cancelled, j)
			continue
		case !ep.Active || ep.Deleted:
			j.attempt.Endpoint = ep
			cancelled = append(cancelled, j)
			continue
		}
		j.attempt = attempt{DeliveryID: c.DeliveryID, Number: c.AttemptCount + 1, Endpoint: ep, Msg: msg}
		send = append(send, j)
	}
	return send, cancelled, nil
}

// endpointRow is the stored configuration of an endpoint.
type endpointRow struct {
	ID, AppID, URL string
	Auth           webhook.Auth
	Headers        []webhook.Header
	Retry          webhook.RetryPolicy
	Timeout        time.Duration
	Active         bool
	Deleted        bool
	UpdatedAt      time.Time
	Secret         string
	PreviousSecret string
	PreviousUntil  *time.Time
}

func rowOf(ep *ent.Endpoint) endpointRow {
	r := endpointRow{
		ID: ep.ID, AppID: ep.AppID, URL: ep.URL, Auth: ep.Auth, Headers: ep.Headers,
		Retry: ep.RetryPolicy, Timeout: ep.Timeout, Active: ep.IsActive, Deleted: ep.DeletedAt != nil,
		UpdatedAt: ep.UpdatedAt, Secret: ep.Secret, PreviousUntil: ep.PreviousSecretExpiresAt,
	}
	if ep.PreviousSecret != nil {
		r.PreviousSecret = *ep.PreviousSecret
	}
	return r
}
