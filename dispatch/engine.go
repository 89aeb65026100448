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
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/catalog"
	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/endpoint"
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
	// ReadDB, if set, is a read pool the default claimer reads from.
	ReadDB *sql.DB
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
		c.Claimer = NewSQLClaimer(c.DB, c.ReadDB)
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
	// hints are endpoints Notify named since the scheduler last looked;
	// hintAll asks it to look at every endpoint.
	hintMu  sync.Mutex
	hints   map[string]struct{}
	hintAll bool

	// Publishing: callers queue on publishes; one goroutine commits them
	// in groups and hands the new deliveries to the scheduler.
	publishes chan *publishReq
	pubDone   chan struct{}
	pubStmts  publishStmts
	subs      *subscriptions
	handoffs  chan []*job
	// stale marks endpoints changed since the scheduler loaded their
	// configuration (value: when), so handed-off deliveries of them go
	// through a claim, which reloads it.
	stale sync.Map

	// held holds, per endpoint, the deliveries claimed and not yet
	// recorded or released: the engine's leases. Claims skip them.
	heldMu sync.Mutex
	held   map[string]map[string]struct{}
	// While the scheduler claims, deliveries released from held are
	// remembered in tomb: the claim may have read them before they were
	// recorded, and must not take them again.
	claiming bool
	tomb     map[string]struct{}

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
	attempt attempt
	trigger string // SCHEDULED, MANUAL_RETRY or TEST
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
		sender:       newSender(cfg.Policy, cfg.UserAgent, cfg.MaxResponseBody, cfg.Workers, cfg.Now),
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
	e.held = make(map[string]map[string]struct{})
	e.publishes = make(chan *publishReq, 1024)
	e.pubDone = make(chan struct{})
	e.subs = newSubscriptions(5 * time.Second)
	e.handoffs = make(chan []*job, 1024)
	e.sendCtx, e.cancelSends = context.WithCancel(context.Background())
	return e, nil
}

// EndpointChanged tells the engine that an endpoint of an app was created
// or changed (after the change is committed), so that publishing and
// sending use its new configuration.
func (e *Engine) EndpointChanged(appID, id string) {
	e.subs.invalidate(appID)
	e.stale.Store(id, time.Now())
}

// EndpointEnabled tells the engine that an endpoint is active again.
func (e *Engine) EndpointEnabled(id string) {
	e.inactive.Delete(id)
	e.stale.Store(id, time.Now())
	e.subs.invalidate("")
}

// EndpointDisabled tells the engine that an endpoint was disabled or
// deleted (after the change is committed). Its queued deliveries fail at
// once with the reason; the ones the engine holds are not sent, except the
// attempts already in flight, which finish and are not retried.
func (e *Engine) EndpointDisabled(ctx context.Context, id, reason string) {
	e.inactive.Store(id, true)
	e.subs.invalidate("")
	if err := e.cancelQueued(tenant.System(ctx), id, reason); err != nil {
		// The engine fails them when it claims them instead.
		e.log.Error("fail queued deliveries of disabled endpoint", "endpoint_id", id, "err", err)
	}
	e.Notify(id)
}

// maxReportedCancels bounds the per-delivery changes reported when an
// endpoint with a long backlog is disabled; the endpoint change covers the
// rest.
const maxReportedCancels = 1000

// cancelQueued fails the unfinished deliveries of an endpoint that the
// engine does not hold.
func (e *Engine) cancelQueued(ctx context.Context, endpointID, reason string) error {
	now := e.cfg.Now().UTC()
	held := e.heldOf(endpointID)
	args := []any{reason, now, now, endpointID}
	q := `UPDATE deliveries SET status = 'FAILED', next_attempt_at = NULL, claimed_by = NULL, last_error = ?, completed_at = ?, updated_at = ?
WHERE endpoint_id = ? AND next_attempt_at IS NOT NULL AND status <> 'SENDING'`
	if len(held) > 0 {
		q += ` AND id NOT IN (` + placeholders(len(held)) + `)`
		for _, id := range held {
			args = append(args, id)
		}
	}
	q += ` RETURNING id, app_id, event_id, event_type`
	rows, err := e.cfg.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("cancel deliveries of endpoint %s: %w", endpointID, err)
	}
	defer rows.Close()
	for n := 0; rows.Next(); n++ {
		c := DeliveryChange{Kind: Cancelled, EndpointID: endpointID, Status: "FAILED", Error: reason, At: now}
		if err := rows.Scan(&c.DeliveryID, &c.AppID, &c.EventID, &c.EventType); err != nil {
			return fmt.Errorf("cancel deliveries of endpoint %s: %w", endpointID, err)
		}
		if n < maxReportedCancels {
			e.cfg.Observer.DeliveryChanged(c)
		}
	}
	return rows.Err()
}

// holdJobs holds new deliveries about to be committed and handed off.
func (e *Engine) holdJobs(jobs []*job) { e.hold(jobsOf(jobs)) }

func jobsOf(jobs []*job) []Job {
	out := make([]Job, len(jobs))
	for i, j := range jobs {
		out[i] = j.Job
	}
	return out
}

// heldOf returns the deliveries of an endpoint the engine holds.
func (e *Engine) heldOf(endpointID string) []string {
	e.heldMu.Lock()
	defer e.heldMu.Unlock()
	set := e.held[endpointID]
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	return ids
}

// hold records deliveries as held and returns those that were not held
// already (a delivery can reach the scheduler both by hand-off and by a
// claim).
func (e *Engine) hold(jobs []Job) []Job {
	e.heldMu.Lock()
	defer e.heldMu.Unlock()
	fresh := jobs[:0:0]
	for _, j := range jobs {
		set := e.held[j.EndpointID]
		if set == nil {
			set = make(map[string]struct{})
			e.held[j.EndpointID] = set
		}
		if _, ok := set[j.DeliveryID]; ok {
			continue
		}
		set[j.DeliveryID] = struct{}{}
		fresh = append(fresh, j)
	}
	return fresh
}

// handOff gives freshly published deliveries to the scheduler, which sends
// them without reading them back from the store. The publisher holds them
// before they are committed (see holdJobs), so no claim can take them as
// well; if the scheduler cannot take them now, they are released to be
// claimed from the store as usual.
func (e *Engine) handOff(jobs []*job) {
	select {
	case e.handoffs <- jobs:
	default:
		e.unhold(jobsOf(jobs))
		ids := make([]string, 0, 1)
		seen := map[string]bool{}
		for _, j := range jobs {
			if !seen[j.EndpointID] {
				seen[j.EndpointID] = true
				ids = append(ids, j.EndpointID)
			}
		}
		e.Notify(ids...)
	}
}

func (e *Engine) unhold(jobs []Job) {
	e.heldMu.Lock()
	defer e.heldMu.Unlock()
	for _, j := range jobs {
		if set := e.held[j.EndpointID]; set != nil {
			delete(set, j.DeliveryID)
			if len(set) == 0 {
				delete(e.held, j.EndpointID)
			}
		}
		if e.claiming {
			e.tomb[j.DeliveryID] = struct{}{}
		}
	}
}

// beginClaim marks the start of a claim's read; see tomb.
func (e *Engine) beginClaim() {
	e.heldMu.Lock()
	e.claiming, e.tomb = true, make(map[string]struct{})
	e.heldMu.Unlock()
}

// holdClaimed ends a claim: it holds the claimed deliveries that are
// neither held nor released while the claim read (recorded meanwhile, so
// the read was stale), and returns them.
func (e *Engine) holdClaimed(jobs []Job) []Job {
	e.heldMu.Lock()
	tomb := e.tomb
	e.claiming, e.tomb = false, nil
	e.heldMu.Unlock()
	fresh := jobs[:0:0]
	for _, j := range jobs {
		if _, gone := tomb[j.DeliveryID]; !gone {
			fresh = append(fresh, j)
		}
	}
	return e.hold(fresh)
}

// Notify wakes the engine to look for due deliveries now: of the given
// endpoints, or of every endpoint if none is given. Publishing and retry
// mutations call it after they commit.
func (e *Engine) Notify(endpointIDs ...string) {
	e.hintMu.Lock()
	if len(endpointIDs) == 0 {
		e.hintAll = true
	} else {
		if e.hints == nil {
			e.hints = make(map[string]struct{})
		}
		for _, id := range endpointIDs {
			e.hints[id] = struct{}{}
		}
	}
	e.hintMu.Unlock()
	e.poke()
}

// poke wakes the scheduler without hints, for when capacity frees up.
func (e *Engine) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// takeHints returns the endpoints named by Notify since the last call, or
// nil if the scheduler should look at every endpoint.
func (e *Engine) takeHints() []string {
	e.hintMu.Lock()
	defer e.hintMu.Unlock()
	ids := make([]string, 0, len(e.hints))
	for id := range e.hints {
		ids = append(ids, id)
	}
	clear(e.hints)
	if e.hintAll {
		e.hintAll = false
		return nil
	}
	return ids
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
		go e.runPublisher()
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
		// Stop publishing: queued publishes are committed; their
		// deliveries wait in the store for the next start.
		e.submitMu.Lock()
		e.closed = true
		close(e.publishes)
		e.submitMu.Unlock()
		<-e.pubDone
		e.pubStmts.close()
		close(e.work)
		e.workersWG.Wait()
		close(e.results)
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

// scheduler is the state of the scheduling goroutine.
type scheduler struct {
	e       *Engine
	busy    int                       // jobs handed to workers, not done
	eps     map[string]*endpointState // endpoints with queued or in-flight jobs
	waiting []string                  // endpoints with queued jobs, round-robin order
	configs map[string]*endpointConfig
	// hot holds endpoints that may have due deliveries; claims go round
	// robin over them. An endpoint leaves when a claim comes back short.
	hot     map[string]bool
	hotRing []string
	next    int
	// cursor is, per endpoint, where its next claim may start reading:
	// the position of the last delivery claimed. It is dropped when a
	// claim comes back short and on every poll, so a delivery stored late
	// with an earlier due time waits at most one poll interval.
	cursor map[string]Cursor
}

// The scheduler keeps at most queueFactor × PerEndpoint jobs of one
// endpoint (queued and in flight), and claims for an endpoint once at
// least claimMin of that room is free, so claims come in batches.
const queueFactor = 2

func (s *scheduler) claimMin() int { return max(1, min(s.e.cfg.PerEndpoint/2, 16)) }

// room is how many more jobs of the endpoint the scheduler can hold.
func (s *scheduler) room(id string) int {
	held := 0
	if st := s.eps[id]; st != nil {
		held = st.inflight + len(st.queue)
	}
	return queueFactor*s.e.cfg.PerEndpoint - held
}

func (s *scheduler) addHot(id string) {
	if !s.hot[id] {
		s.hot[id] = true
		s.hotRing = append(s.hotRing, id)
	}
}

// pump hands queued jobs to workers, round robin over endpoints, within the
// global and per-endpoint limits.
func (s *scheduler) pump() {
	e := s.e
	for s.busy < e.cfg.Workers && len(s.waiting) > 0 {
		progressed := false
		next := s.waiting[:0]
		for _, id := range s.waiting {
			st := s.eps[id]
			if s.busy < e.cfg.Workers && st.inflight < e.cfg.PerEndpoint && len(st.queue) > 0 {
				j := st.queue[0]
				st.queue[0] = nil
				st.queue = st.queue[1:]
				st.inflight++
				s.busy++
				e.work <- j
				progressed = true
			}
			if len(st.queue) > 0 {
				next = append(next, id)
			}
		}
		s.waiting = next
		if !progressed {
			break
		}
	}
}

// claimRound claims for hot endpoints that have room, round robin, until
// the engine's outstanding window is full. It reports whether it should
// run again soon (some endpoint still has due work and room).
func (s *scheduler) claimRound() bool {
	e := s.e
	free := int(e.maxOut - e.outstanding.Load())
	more := false
	for tries := len(s.hotRing); tries > 0 && free >= s.claimMin(); tries-- {
		if len(s.hotRing) == 0 {
			break
		}
		s.next %= len(s.hotRing)
		id := s.hotRing[s.next]
		room := s.room(id)
		if room < s.claimMin() {
			s.next++
			continue
		}
		limit := min(room, free, e.cfg.BatchSize)
		jobs, last, err := e.claim(id, limit, s.cursor[id], s.configs)
		if err != nil {
			e.log.Error("claim deliveries", "endpoint_id", id, "err", err)
			return false
		}
		free -= len(jobs)
		for _, j := range jobs {
			st := s.eps[id]
			if st == nil {
				st = &endpointState{}
				s.eps[id] = st
			}
			if len(st.queue) == 0 {
				s.waiting = append(s.waiting, id)
			}
			st.queue = append(st.queue, j)
		}
		if len(jobs) < limit {
			// Nothing more due for now: leave the ring.
			delete(s.hot, id)
			delete(s.cursor, id)
			s.hotRing = append(s.hotRing[:s.next], s.hotRing[s.next+1:]...)
		} else {
			s.cursor[id] = last
			more = true
			s.next++
		}
	}
	s.pump()
	return more && free >= s.claimMin()
}

// schedule claims due deliveries and hands them to workers, keeping at most
// Workers requests in flight overall and PerEndpoint per endpoint. It runs
// in one goroutine and owns all scheduling state.
func (e *Engine) schedule() {
	defer close(e.schedDone)
	s := &scheduler{
		e:       e,
		eps:     make(map[string]*endpointState),
		configs: make(map[string]*endpointConfig),
		hot:     make(map[string]bool),
		cursor:  make(map[string]Cursor),
	}
	var (
		wanted    = true
		discover  = true
		ticker    = time.NewTicker(e.cfg.PollInterval)
		stopping  = false
		stopClaim = e.stopClaiming
	)
	defer ticker.Stop()

	for {
		if stopping {
			if s.busy == 0 {
				return
			}
		} else if wanted {
			if discover {
				s.discover()
				discover = false
			}
			wanted = s.claimRound()
		}
		select {
		case <-e.wake:
			wanted = true
			if ids := e.takeHints(); ids == nil {
				discover = true
			} else {
				for _, id := range ids {
					s.addHot(id)
				}
			}
		case jobs := <-e.handoffs:
			if s.accept(jobs) {
				wanted = true
			}
		case <-ticker.C:
			wanted, discover = true, true
			clear(s.cursor)
			for id, st := range s.eps {
				if st.inflight == 0 && len(st.queue) == 0 {
					delete(s.eps, id)
				}
			}
		case id := <-e.done:
			s.busy--
			if st := s.eps[id]; st != nil {
				st.inflight--
			}
			s.pump()
			if s.hot[id] && s.room(id) >= s.claimMin() {
				wanted = true
			}
		case <-stopClaim:
			stopping, stopClaim = true, nil
			var ids []string
			for _, st := range s.eps {
				for _, j := range st.queue {
					ids = append(ids, j.DeliveryID)
				}
				st.queue = nil
			}
			s.waiting = nil
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

// accept queues handed-off deliveries whose endpoint configuration is
// known, fresh and active, within the endpoint's room. The others are left
// to a claim; accept reports whether one is needed.
func (s *scheduler) accept(jobs []*job) (claim bool) {
	e := s.e
	until := e.cfg.Now().UTC().Add(e.cfg.Lease)
	for _, j := range jobs {
		cfg := s.configs[j.EndpointID]
		_, stale := e.stale.Load(j.EndpointID)
		_, off := e.inactive.Load(j.EndpointID)
		if cfg == nil || stale || off || !cfg.Active || cfg.Deleted || s.room(j.EndpointID) <= 0 {
			// Leave it to a claim, which must be free to take it.
			e.unhold([]Job{j.Job})
			s.addHot(j.EndpointID)
			claim = true
			continue
		}
		j.LeaseUntil = until
		j.attempt.Endpoint = cfg
		e.outstanding.Add(1)
		st := s.eps[j.EndpointID]
		if st == nil {
			st = &endpointState{}
			s.eps[j.EndpointID] = st
		}
		if len(st.queue) == 0 {
			s.waiting = append(s.waiting, j.EndpointID)
		}
		st.queue = append(st.queue, j)
	}
	s.pump()
	return claim
}

// discover asks the store which endpoints have due deliveries.
func (s *scheduler) discover() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ids, err := s.e.cfg.Claimer.Due(ctx, s.e.cfg.Now().UTC())
	if err != nil {
		s.e.log.Error("find due endpoints", "err", err)
		return
	}
	for _, id := range ids {
		s.addHot(id)
	}
}

// claim leases up to limit due deliveries of an endpoint and prepares them
// for sending. Deliveries of endpoints that are disabled or deleted are
// finished at once without an attempt.
// It also returns the due time of the last delivery the store returned,
// where the endpoint's next claim may start.
func (e *Engine) claim(endpointID string, limit int, after Cursor, configs map[string]*endpointConfig) ([]*job, Cursor, error) {
	ctx, cancel := context.WithTimeout(tenant.System(context.Background()), 30*time.Second)
	defer cancel()
	now := e.cfg.Now().UTC()
	e.beginClaim()
	claimed, err := e.cfg.Claimer.Claim(ctx, e.worker, endpointID, now, e.cfg.Lease, limit, e.heldOf(endpointID), after)
	if err != nil || len(claimed) == 0 {
		e.holdClaimed(nil)
		return nil, after, err
	}
	last := claimed[len(claimed)-1].Position
	if claimed = e.holdClaimed(claimed); len(claimed) == 0 {
		return nil, last, nil
	}
	e.outstanding.Add(int64(len(claimed)))
	jobs, cancelled, err := e.prepare(ctx, claimed, configs)
	if err != nil {
		// Give the deliveries back: they are claimed again later.
		ids := make([]string, len(claimed))
		for i, c := range claimed {
			ids[i] = c.DeliveryID
		}
		if rerr := e.cfg.Claimer.Release(ctx, e.worker, ids, now); rerr != nil {
			e.log.Error("release deliveries", "err", rerr)
		}
		e.unhold(claimed)
		e.outstanding.Add(-int64(len(claimed)))
		return nil, after, err
	}
	for _, j := range cancelled {
		e.results <- &result{job: j, cancelled: true}
	}
	return jobs, last, nil
}

// prepare loads the endpoints and events of claimed deliveries. It returns
// the jobs to send and those to cancel because their endpoint is gone.
func (e *Engine) prepare(ctx context.Context, claimed []Job, configs map[string]*endpointConfig) (send, cancelled []*job, err error) {
	// Reload the configuration of endpoints that changed or were loaded
	// long ago (changes by another process).
	var reload []string
	now := time.Now()
	for _, c := range claimed {
		cfg := configs[c.EndpointID]
		_, stale := e.stale.Load(c.EndpointID)
		if (cfg == nil || stale || now.Sub(cfg.loadedAt) > configTTL) && !slices.Contains(reload, c.EndpointID) {
			reload = append(reload, c.EndpointID)
		}
	}
	if len(reload) > 0 {
		endpoints, err := e.cfg.Client.Endpoint.Query().Where(endpoint.IDIn(reload...)).All(schema.IncludeDeleted(ctx))
		if err != nil {
			return nil, nil, fmt.Errorf("load endpoints: %w", err)
		}
		for _, ep := range endpoints {
			if t, ok := e.stale.Load(ep.ID); ok && t.(time.Time).Before(now) {
				e.stale.CompareAndDelete(ep.ID, t)
			}
			if ep.IsActive && ep.DeletedAt == nil {
				e.inactive.Delete(ep.ID)
			} else {
				e.inactive.Store(ep.ID, true)
			}
			c, err := newEndpointConfig(ep)
			if err != nil {
				return nil, nil, err
			}
			c.loadedAt = now
			configs[ep.ID] = c
		}
	}
	send = make([]*job, 0, len(claimed))
	var msg *message // consecutive deliveries of one event share it
	for _, c := range claimed {
		ep := configs[c.EndpointID]
		j := &job{Job: c, trigger: c.Trigger}
		switch {
		case ep == nil:
			e.log.Error("claimed delivery of an unknown endpoint", "delivery_id", c.DeliveryID, "endpoint_id", c.EndpointID)
			cancelled = append(cancelled, j)
			continue
		case !ep.Active || ep.Deleted:
			j.attempt.Endpoint = ep
			cancelled = append(cancelled, j)
			continue
		}
		if msg == nil || msg.ID != c.EventID {
			msg = &message{ID: c.EventID, Type: c.EventType, Body: renderEnvelope(c.EventID, c.EventType, c.EventCreatedAt, c.Payload)}
		}
		j.Payload = nil // rendered into the message
		j.attempt = attempt{DeliveryID: c.DeliveryID, Number: c.AttemptCount + 1, Endpoint: ep, Msg: msg}
		send = append(send, j)
	}
	return send, cancelled, nil
}

// configTTL bounds how long the scheduler trusts a loaded endpoint
// configuration; changes made through this process take effect at once.
const configTTL = 5 * time.Second
