package dispatch

import (
	"context"

	"fmt"
	"github.com/heraldhq/herald/destination"
	"log/slog"
	"sync"
	"time"

	"github.com/heraldhq/herald/tenant"
)

// job is a delivery on its way through the engine: leased, prepared for
// sending, and (unless counted is false, for test sends) holding room in
// the engine's window until its result is recorded or it is released.
type job struct {
	Job
	attempt attempt
	trigger string // SCHEDULED, MANUAL_RETRY or TEST
	counted bool
	// left is set once the attempt ended and the job left its
	// endpoint's share of the window (window.leave).
	left bool
	// flowSeq is the request's number in its endpoint's flow.
	flowSeq uint64
}

// schedConfig is what the scheduler needs of the engine's configuration.
type schedConfig struct {
	Worker       string
	Workers      int
	PerEndpoint  int
	BatchSize    int
	Lease        time.Duration
	PollInterval time.Duration
}

// scheduler decides what is sent when. One goroutine (run) owns its state:
// the endpoints with due deliveries, the queued jobs per endpoint and the
// requests in flight. Its invariants:
//
//   - at most Workers requests are in flight, and at most PerEndpoint to
//     one endpoint;
//   - it takes deliveries (claims, hand-offs) only within the window, so
//     what the engine holds is bounded whatever the number of endpoints;
//   - a job reaches a worker only while its lease leaves time to send it,
//     and only one worker holds a job;
//   - it takes nothing while the recorder cannot commit, nor once it is
//     stopping: hand-offs are then released, still PENDING in the store.
//
// Claims go round robin over the endpoints that may have due deliveries,
// each resuming where the endpoint's previous claim ended; one endpoint's
// failing claim does not stop the others.
type scheduler struct {
	cfg       schedConfig
	driver    Driver
	configs   *endpointConfigs
	window    *window
	log       *slog.Logger
	now       func() time.Time
	canCommit func() bool
	// record hands results of jobs that will not be sent (their endpoint
	// is inactive) to the recorder; released is told the endpoints of
	// jobs given back, due again for anyone to claim.
	record   func(*result)
	released func(endpointIDs []string)
	work     chan<- *job

	wake     chan struct{}
	hintMu   sync.Mutex
	hints    map[string]struct{}
	hintAll  bool
	handoffs chan []*job
	hoMu     sync.Mutex
	hoClosed bool
	done     chan doneMsg // a worker finished a job
	stop     chan struct{}
	stopped  chan struct{}
	// flowStates publishes each endpoint's pace for Engine.Flow.
	flowStates sync.Map // endpoint ID → FlowState

	// State of the run goroutine.
	busy int
	eps  map[string]*endpointState
	// apps are the apps with jobs queued or in flight, waiting those
	// with jobs queued, in turn.
	apps     map[string]*appState
	waiting  []string
	hot      map[string]bool
	hotRing  []string
	next     int
	cursor   map[string]Cursor
	notUntil map[string]time.Time // endpoints whose last claim failed
	// round is what the claim round in progress found. A round in which
	// the window refused room to every endpoint it was asked for, with
	// none left out for a while (parked, a failed claim), is futile:
	// since each delivery freed adds at most one to what any endpoint is
	// granted, none can claim before the window frees claimMin − best
	// more, and a finished delivery starts no round before that
	// (futileFreed is the window's count of freed room when that round
	// began). Otherwise, with one app's hundreds of endpoints holding its
	// share, every finished delivery walked the whole ring for nothing.
	round       claimRoundState
	futile      bool
	futileBest  int
	futileFreed uint64
	stopping    bool
	// discovery backs off while the store does not answer the due probe.
	// The probe runs on its own goroutine (probing is set meanwhile) and
	// answers on probed: on a busy store it takes a while, and the
	// scheduler goes on meanwhile with hand-offs, results and claims.
	discoverBackoff time.Duration
	discoverAfter   time.Time
	probing         bool
	probed          chan probe
	// flows pace each endpoint's requests; flowTimer wakes the scheduler
	// when a paced endpoint may receive its next one.
	flows     map[string]*flow
	flowTimer *time.Timer
	flowAt    time.Time
	// owned holds the endpoints this engine sends to alone (rate-limited
	// or ordered) and until when; parkLogged when a parked endpoint was
	// last reported.
	owned      map[string]time.Time
	parkLogged map[string]time.Time
}

// doneMsg is what a worker reports when it is done with a job.
type doneMsg struct {
	endpointID string
	// outcome, overloaded and pause are the answer's (see
	// destination.Result); sent reports that a request was made and
	// answered or failed at the endpoint; requested that it went out at
	// all (interrupted and deferred ones included).
	outcome    destination.Outcome
	overloaded bool
	pause      time.Duration
	sent       bool
	requested  bool
	seq        uint64 // the job's flowSeq
}

// probe is the answer of the due probe started at at.
type probe struct {
	ids []string
	err error
	at  time.Time
}

// endpointState is the scheduler's view of one endpoint.
type endpointState struct {
	app      string
	inflight int
	queue    []*job
}

// appState is the scheduler's view of one app: its endpoints with jobs
// queued, in turn, and its requests in flight.
type appState struct {
	waiting  []string
	next     int
	inflight int
}

func newScheduler(cfg schedConfig, d Driver, configs *endpointConfigs, w *window, log *slog.Logger, now func() time.Time, work chan<- *job) *scheduler {
	return &scheduler{
		cfg: cfg, driver: d, configs: configs, window: w, log: log, now: now, work: work,
		canCommit:  func() bool { return true },
		record:     func(*result) {},
		released:   func([]string) {},
		wake:       make(chan struct{}, 1),
		handoffs:   make(chan []*job, max(w.max, 64)),
		done:       make(chan doneMsg, cfg.Workers),
		probed:     make(chan probe, 1),
		stop:       make(chan struct{}),
		stopped:    make(chan struct{}),
		eps:        make(map[string]*endpointState),
		apps:       make(map[string]*appState),
		hot:        make(map[string]bool),
		cursor:     make(map[string]Cursor),
		notUntil:   make(map[string]time.Time),
		flows:      make(map[string]*flow),
		owned:      make(map[string]time.Time),
		parkLogged: make(map[string]time.Time),
	}
}

// flowOf returns an endpoint's pace, creating it.
func (s *scheduler) flowOf(id string) *flow {
	f := s.flows[id]
	if f == nil {
		f = newFlow(s.cfg.PerEndpoint)
		s.flows[id] = f
	}
	return f
}

// publishFlow makes an endpoint's pace visible to Engine.Flow.
func (s *scheduler) publishFlow(id string, f *flow) {
	s.flowStates.Store(id, f.state(s.now()))
}

// claimMin is the least room worth a claim, so that claims come in
// batches.
func (s *scheduler) claimMin() int { return max(1, min(s.cfg.PerEndpoint/2, 16)) }

// retryClaimAfter is how long an endpoint whose claim failed is left out.
const retryClaimAfter = time.Second

// notify asks the scheduler to look for due deliveries of the given
// endpoints, or of every endpoint if none is given.
func (s *scheduler) notify(endpointIDs ...string) {
	s.hintMu.Lock()
	if len(endpointIDs) == 0 {
		s.hintAll = true
	} else {
		if s.hints == nil {
			s.hints = make(map[string]struct{})
		}
		for _, id := range endpointIDs {
			s.hints[id] = struct{}{}
		}
	}
	s.hintMu.Unlock()
	s.poke()
}

// poke wakes the scheduler without hints, for when room frees up.
func (s *scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// takeHints returns the endpoints named since the last call, or nil if the
// scheduler should look at every endpoint.
func (s *scheduler) takeHints() []string {
	s.hintMu.Lock()
	defer s.hintMu.Unlock()
	ids := make([]string, 0, len(s.hints))
	for id := range s.hints {
		ids = append(ids, id)
	}
	clear(s.hints)
	if s.hintAll {
		s.hintAll = false
		return nil
	}
	return ids
}

// handOff gives freshly published deliveries, leased to this engine and
// holding room in the window, to the scheduler, which sends them without
// claiming them. Once the scheduler has stopped they are released.
func (s *scheduler) handOff(jobs []*job) {
	s.hoMu.Lock()
	defer s.hoMu.Unlock()
	if !s.hoClosed {
		select {
		case s.handoffs <- jobs:
			return
		default:
		}
	}
	s.release(jobs)
}

// release gives jobs back: their leases end and their room in the window
// is freed. They are due again in the store.
func (s *scheduler) release(jobs []*job) {
	if len(jobs) == 0 {
		return
	}
	leases := make([]Lease, len(jobs))
	for i, j := range jobs {
		leases[i] = j.Lease
	}
	ctx, cancel := context.WithTimeout(tenant.System(context.Background()), 10*time.Second)
	defer cancel()
	if err := s.driver.Release(ctx, leases, s.now().UTC()); err != nil {
		// The leases expire by themselves.
		s.log.Error("release deliveries", "count", len(leases), "err", err)
	}
	releaseRoom(s.window, jobs)
	var eps []string
	for _, j := range jobs {
		eps = appendNew(eps, j.EndpointID)
	}
	s.released(eps)
	s.poke()
}

// releaseRoom frees the window room of counted jobs.
func releaseRoom(w *window, jobs []*job) {
	for _, j := range jobs {
		releaseJob(w, j)
	}
}

// releaseJob frees the window room of a job if it holds any.
func releaseJob(w *window, j *job) {
	switch {
	case !j.counted:
	case j.left:
		w.releaseLeft(j.AppID, 1)
	default:
		w.release(j.EndpointID, j.AppID, 1)
	}
}

func (s *scheduler) addHot(id string) {
	if !s.hot[id] {
		s.hot[id] = true
		s.hotRing = append(s.hotRing, id)
	}
}

func (s *scheduler) leaveRing(i int) {
	id := s.hotRing[i]
	delete(s.hot, id)
	delete(s.cursor, id)
	s.hotRing = append(s.hotRing[:i], s.hotRing[i+1:]...)
}

// enqueue queues jobs of one endpoint for the workers.
func (s *scheduler) enqueue(id string, jobs []*job) {
	if len(jobs) == 0 {
		return
	}
	st := s.eps[id]
	if st == nil {
		st = &endpointState{app: jobs[0].AppID}
		s.eps[id] = st
	}
	if len(st.queue) == 0 {
		a := s.apps[st.app]
		if a == nil {
			a = &appState{}
			s.apps[st.app] = a
		}
		if len(a.waiting) == 0 {
			s.waiting = append(s.waiting, st.app)
		}
		a.waiting = append(a.waiting, id)
	}
	st.queue = append(st.queue, jobs...)
}

// appWorkers is the most requests one app may have in flight: all workers
// but a quarter, kept for the other apps, so that one app's slow or many
// endpoints never take every worker from another's.
func (s *scheduler) appWorkers() int { return max(1, s.cfg.Workers-s.cfg.Workers/4) }

// pump hands queued jobs to workers, round robin over apps and, within
// each app, over its endpoints, within the global limit, each app's share
// (appWorkers) and each endpoint's pace (its concurrency, rate limit and
// pause). If a paced endpoint has to wait, the flow timer wakes the
// scheduler when it may go on.
func (s *scheduler) pump() {
	now := s.now()
	var wakeAt time.Time
	for s.busy < s.cfg.Workers && len(s.waiting) > 0 {
		progressed := false
		next := s.waiting[:0]
		for _, app := range s.waiting {
			a := s.apps[app]
			if s.busy < s.cfg.Workers && a.inflight < s.appWorkers() && s.sendOne(a, now, &wakeAt) {
				progressed = true
			}
			if len(a.waiting) > 0 {
				next = append(next, app)
			}
		}
		s.waiting = next
		if !progressed {
			break
		}
	}
	if !wakeAt.IsZero() {
		s.wakeAt(wakeAt)
	}
}

// sendOne hands one job of an app to a worker: from the next of its
// endpoints, in turn, whose pace allows it. It drops endpoints with nothing
// queued from the app's turn, and notes in wakeAt when a paced endpoint
// may go on.
func (s *scheduler) sendOne(a *appState, now time.Time, wakeAt *time.Time) bool {
	for tries := len(a.waiting); tries > 0 && len(a.waiting) > 0; tries-- {
		a.next %= len(a.waiting)
		id := a.waiting[a.next]
		st := s.eps[id]
		if len(st.queue) == 0 {
			a.waiting = append(a.waiting[:a.next], a.waiting[a.next+1:]...)
			continue
		}
		a.next++
		f := s.flowOf(id)
		if st.inflight >= f.concurrency() {
			continue
		}
		if at := f.readyAt(now); at.After(now) {
			if wakeAt.IsZero() || at.Before(*wakeAt) {
				*wakeAt = at
			}
			continue
		}
		j := st.queue[0]
		st.queue[0] = nil
		st.queue = st.queue[1:]
		if len(st.queue) == 0 {
			a.next--
			a.waiting = append(a.waiting[:a.next], a.waiting[a.next+1:]...)
		}
		st.inflight++
		a.inflight++
		s.busy++
		j.flowSeq = f.sent(now)
		s.work <- j
		return true
	}
	return false
}

// wakeAt makes the flow timer fire at t unless it fires earlier already.
func (s *scheduler) wakeAt(t time.Time) {
	if !s.flowAt.IsZero() && !t.Before(s.flowAt) {
		return
	}
	d := max(t.Sub(s.now()), time.Millisecond)
	if s.flowTimer == nil {
		s.flowTimer = time.NewTimer(d)
	} else {
		if !s.flowTimer.Stop() {
			select {
			case <-s.flowTimer.C:
			default:
			}
		}
		s.flowTimer.Reset(d)
	}
	s.flowAt = t
}

// flowTimerC is the flow timer's channel (nil, never ready, without one).
func (s *scheduler) flowTimerC() <-chan time.Time {
	if s.flowTimer == nil {
		return nil
	}
	return s.flowTimer.C
}

// claimRound claims for hot endpoints that have room, round robin, until
// the window is full. It reports whether it should run again soon (some
// endpoint still has due work and room).
func (s *scheduler) claimRound(ctx context.Context) bool {
	if s.stopping || !s.canCommit() {
		return false
	}
	now := s.now()
	more := false
	freed := s.window.freedSoFar()
	s.round.reset()
	// Endpoints that hold nothing in the window go first: room that
	// frees up goes to a retry or a quiet endpoint before the busy ones,
	// which hold their share already, take it back.
	for _, idle := range []bool{true, false} {
		for tries := len(s.hotRing); tries > 0 && len(s.hotRing) > 0 && s.window.free() >= s.claimMin(); tries-- {
			s.next %= len(s.hotRing)
			id := s.hotRing[s.next]
			if idle && s.window.heldBy(id) > 0 {
				s.next++
				continue
			}
			if s.claimNext(ctx, now, id) {
				more = true
			}
			s.acceptHandoffs()
		}
	}
	s.pump()
	free := s.window.free()
	r := &s.round
	if free < s.claimMin() {
		r.refuse(free) // the endpoints not asked would have been refused too
	}
	s.futile = r.refused && !r.granted && !r.waiting
	s.futileBest, s.futileFreed = r.best, freed
	return more && free >= s.claimMin()
}

// claimRoundState is what a claim round found: whether the window granted
// room for a claim, refused it (best is the most it offered an endpoint
// it refused), or an endpoint was left out for a while, and the apps it
// found with too little room for a claim, with that room.
type claimRoundState struct {
	granted, refused, waiting bool
	best                      int
	appRoom                   map[string]int
}

func (r *claimRoundState) reset() {
	clear(r.appRoom)
	r.granted, r.refused, r.waiting, r.best = false, false, false, 0
}

func (r *claimRoundState) refuse(room int) {
	r.refused = true
	r.best = max(r.best, room)
}

// ready reports whether the run loop should claim again after a delivery
// finished: the last round was not futile, or the window has freed enough
// since it began for a claim.
func (s *scheduler) ready() bool {
	return !s.futile || s.futileBest+int(s.window.freedSoFar()-s.futileFreed) >= s.claimMin()
}

// acceptHandoffs queues the hand-offs waiting, without blocking. A round
// of claims calls it after each claim, so that fresh publishes wait for at
// most one claim, never for a whole round: with a busy app's many
// endpoints hot on a remote store, a round takes tens of milliseconds.
func (s *scheduler) acceptHandoffs() {
	for {
		select {
		case jobs := <-s.handoffs:
			s.accept(jobs)
		default:
			return
		}
	}
}

// claimNext claims for the hot endpoint at s.next and moves s.next on. It
// reports whether the endpoint may have more due.
func (s *scheduler) claimNext(ctx context.Context, now time.Time, id string) bool {
	if now.Before(s.notUntil[id]) || s.configs.parked(id) {
		s.round.waiting = true
		s.next++
		return false
	}
	app := s.configs.appOf(id)
	if app == "" {
		// Its configuration is read once, for the app whose share of the
		// window its deliveries take.
		if cfgs, _, err := s.configs.get(tenant.System(ctx), []string{id}); err == nil && cfgs[id] != nil {
			app = cfgs[id].AppID
		}
	}
	if app == "" {
		s.round.waiting = true
		s.next++ // unreadable: claim would park it anyway
		return false
	}
	if room, full := s.round.appRoom[app]; full {
		s.round.refuse(room) // what its endpoints could be granted at most
		s.next++
		return false
	}
	granted := s.window.acquire(id, app, s.cfg.BatchSize)
	if granted < s.claimMin() {
		s.window.giveBack(id, app, granted)
		s.round.refuse(granted)
		if room := s.window.appRoom(app); room < s.claimMin() {
			if s.round.appRoom == nil {
				s.round.appRoom = make(map[string]int)
			}
			s.round.appRoom[app] = room
		}
		s.next++
		return false
	}
	s.round.granted = true
	jobs, last, err := s.claim(ctx, id, granted)
	s.window.giveBack(id, app, granted-len(jobs))
	if err != nil {
		s.log.Error("claim deliveries; trying the endpoint again later", "endpoint_id", id, "err", err)
		s.notUntil[id] = now.Add(retryClaimAfter)
		s.next++
		return false
	}
	delete(s.notUntil, id)
	s.enqueue(id, jobs)
	if last == nil {
		s.leaveRing(s.next) // nothing more due for now
		return false
	}
	s.cursor[id] = *last
	s.next++
	return true
}

// claim leases up to limit due deliveries of an endpoint and prepares them
// for sending; the returned jobs hold room in the window. last is where
// the endpoint's next claim may start, nil if the claim came back short
// (nothing more is due). Deliveries of an endpoint that is disabled or
// deleted go to the recorder, which fails them without an attempt. An
// endpoint whose flow is controlled (rate-limited or ordered) is claimed
// only while this engine owns it, and no more of it than can be sent
// within a lease.
func (s *scheduler) claim(ctx context.Context, endpointID string, limit int) ([]*job, *Cursor, error) {
	ctx, cancel := context.WithTimeout(tenant.System(ctx), 30*time.Second)
	defer cancel()
	now := s.now().UTC()
	cfgs, parkErrs, err := s.configs.get(ctx, []string{endpointID})
	if err != nil {
		return nil, nil, err
	}
	cfg := cfgs[endpointID]
	if cfg == nil {
		// Unreadable or unknown: leave its deliveries due, and the
		// endpoint alone for a while.
		if perr := parkErrs[endpointID]; perr != nil && now.After(s.parkLogged[endpointID]) {
			s.parkLogged[endpointID] = now.Add(parkFor)
			s.log.Error("endpoint configuration cannot be read; its deliveries wait", "endpoint_id", endpointID, "retry_in", parkFor, "err", perr)
		}
		return nil, nil, nil
	}
	until := now.Add(s.cfg.Lease)
	// An inactive endpoint receives only tests, paced like any delivery;
	// a deleted one receives nothing.
	inactive := !cfg.Active || cfg.Deleted
	if cfg.held != nil && !cfg.Deleted && !cfg.held.Holding() {
		// Its connection is not here (a listener whose session is on
		// another replica, or on none): its deliveries wait for the
		// process that holds it, which may take the endpoint at once.
		s.disown(ctx, endpointID, now)
		return nil, nil, nil
	}
	if !cfg.Deleted {
		f := s.flowOf(endpointID)
		f.configure(cfg, cfg.maxConcurrency(s.cfg.PerEndpoint))
		s.publishFlow(endpointID, f)
		if f.pausedUntil.After(now) {
			s.notUntil[endpointID] = f.pausedUntil
			return nil, nil, nil
		}
		if cfg.controlled() {
			owned, err := s.own(ctx, endpointID, now, cfg.held != nil)
			if err != nil || owned.IsZero() {
				return nil, nil, err
			}
			until = minTime(until, owned)
			if cfg.RateLimit != nil && !f.seeded {
				// Requests an earlier run or another replica made within
				// the window count too.
				ends, err := s.driver.RecentAttemptEnds(ctx, endpointID, now.Add(-cfg.RateLimit.Per), cfg.RateLimit.Requests)
				if err != nil {
					return nil, nil, fmt.Errorf("read the endpoint's recent attempts: %w", err)
				}
				f.seed(ends)
			}
			if cfg.RateLimit != nil {
				// No more than can leave within the lease.
				window := s.cfg.Lease - 2*cfg.Timeout - leaseMargin
				limit = max(1, min(limit, int(float64(cfg.RateLimit.Requests)*window.Seconds()/cfg.RateLimit.Per.Seconds())))
			}
		}
	}
	claimed, err := s.driver.Claim(ctx, ClaimParams{
		Worker: s.cfg.Worker, EndpointID: endpointID, Now: now, Lease: until.Sub(now), Limit: limit, After: s.cursor[endpointID],
		Ordered: cfg.ordered(), Owned: cfg.controlled() && !cfg.Deleted,
	})
	if err != nil {
		return nil, nil, err
	}
	var last *Cursor
	if len(claimed) == limit {
		last = &claimed[len(claimed)-1].Position
	}
	if len(claimed) == 0 {
		return nil, last, nil
	}
	jobs := make([]*job, len(claimed))
	for i, c := range claimed {
		jobs[i] = &job{Job: c, trigger: c.Trigger, counted: true}
	}
	if inactive {
		send := jobs[:0]
		for _, j := range jobs {
			if j.trigger == "TEST" && !cfg.Deleted {
				send = append(send, j)
				continue
			}
			j.attempt.Endpoint = cfg
			s.record(&result{job: j, cancelled: true})
		}
		if jobs = send; len(jobs) == 0 {
			return nil, last, nil
		}
	}
	var msg *message // consecutive deliveries of one event share it
	for _, j := range jobs {
		if msg == nil || msg.ID != j.EventID {
			msg = &message{ID: j.EventID, Type: j.EventType, OrderingKey: j.OrderingKey, Test: j.EventTest,
				Body: renderEnvelope(j.EventID, j.EventType, j.EventCreatedAt, j.Payload, j.EventTest)}
		}
		j.Payload = nil // rendered into the message
		j.attempt = attempt{DeliveryID: j.DeliveryID, Number: j.AttemptCount + 1, Endpoint: cfg, Msg: msg}
	}
	return jobs, last, nil
}

// own makes sure this engine owns a controlled endpoint for a while yet,
// renewing its ownership once a third of the lease has passed. It returns
// until when it owns the endpoint, or zero if another engine does (the
// endpoint is then left alone until that one's ownership would expire, or
// for heldRetry at most if it is held here: the other engine gives it up
// as soon as it learns that its connection moved).
func (s *scheduler) own(ctx context.Context, endpointID string, now time.Time, held bool) (time.Time, error) {
	if until, ok := s.owned[endpointID]; ok && until.Sub(now) > 2*s.cfg.Lease/3 {
		return until, nil
	}
	owned, ownerUntil, err := s.driver.Own(ctx, endpointID, s.cfg.Worker, now.Add(s.cfg.Lease), now)
	if err != nil {
		return time.Time{}, err
	}
	if !owned {
		delete(s.owned, endpointID)
		if held {
			ownerUntil = minTime(ownerUntil, now.Add(heldRetry))
		}
		s.notUntil[endpointID] = ownerUntil
		return time.Time{}, nil
	}
	s.owned[endpointID] = ownerUntil
	return ownerUntil, nil
}

// heldRetry is how often an engine that holds an endpoint's connection
// asks again for the endpoint while another engine owns it.
const heldRetry = time.Second

// disown gives up this engine's ownership of an endpoint, if it has it, at
// once rather than when it would expire, and wakes the other engines: one
// of them may hold the endpoint's connection now.
func (s *scheduler) disown(ctx context.Context, endpointID string, now time.Time) {
	if _, ok := s.owned[endpointID]; !ok {
		return
	}
	delete(s.owned, endpointID)
	if _, _, err := s.driver.Own(ctx, endpointID, s.cfg.Worker, now, now); err != nil {
		// It expires by itself within a lease.
		s.log.Warn("give up an endpoint", "endpoint_id", endpointID, "err", err)
	}
	s.released([]string{endpointID})
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// accept queues handed-off jobs, or releases them once stopping.
func (s *scheduler) accept(jobs []*job) {
	if s.stopping || s.window.isClosed() {
		s.release(jobs)
		return
	}
	start := 0
	for i := 1; i <= len(jobs); i++ {
		if i == len(jobs) || jobs[i].EndpointID != jobs[start].EndpointID {
			s.enqueue(jobs[start].EndpointID, jobs[start:i])
			start = i
		}
	}
	s.pump()
}

// finished notes that a worker is done with a job, and adapts the
// endpoint's pace to its answer.
func (s *scheduler) finished(d doneMsg) {
	s.busy--
	if st := s.eps[d.endpointID]; st != nil {
		st.inflight--
		if a := s.apps[st.app]; a != nil {
			a.inflight--
		}
	}
	f := s.flowOf(d.endpointID)
	now := s.now()
	f.done(now, d.requested)
	if d.sent {
		f.answered(now, d.seq, d.outcome, d.overloaded, d.pause)
		s.publishFlow(d.endpointID, f)
	}
	s.pump()
}

// discover starts the due probe, which asks the store which endpoints have
// due deliveries, unless the probe backs off. Its answer comes on s.probed,
// for discovered. It reports false, having done nothing, while a probe
// runs: the caller asks again once that one has answered, since it may
// have looked before the deliveries the caller wants found were due.
func (s *scheduler) discover(ctx context.Context) bool {
	if s.probing {
		return false
	}
	now := s.now()
	if now.Before(s.discoverAfter) {
		return true
	}
	s.probing = true
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		ids, err := s.driver.Due(ctx, now.UTC())
		s.probed <- probe{ids: ids, err: err, at: now}
	}()
	return true
}

// discovered takes the due probe's answer: the endpoints it found become
// hot. While the store does not answer, the probe runs less and less often
// (up to every 5s) and the failure is logged once, not at every poll.
func (s *scheduler) discovered(p probe) {
	s.probing = false
	if p.err != nil {
		if s.discoverBackoff == 0 {
			s.log.Error("find due endpoints; trying again with backoff", "err", p.err)
		}
		s.discoverBackoff = min(max(2*s.discoverBackoff, s.cfg.PollInterval), 5*time.Second)
		s.discoverAfter = p.at.Add(s.discoverBackoff)
		return
	}
	if s.discoverBackoff != 0 {
		s.log.Info("finding due endpoints again")
		s.discoverBackoff, s.discoverAfter = 0, time.Time{}
	}
	for _, id := range p.ids {
		s.addHot(id)
	}
}

// tick is the periodic housekeeping: claims start over from each
// endpoint's oldest due delivery (so one stored late with an earlier due
// time waits at most a poll interval), and idle state is dropped.
func (s *scheduler) tick() {
	clear(s.cursor)
	for id, st := range s.eps {
		if st.inflight == 0 && len(st.queue) == 0 {
			delete(s.eps, id)
		}
	}
	for app, a := range s.apps {
		if a.inflight == 0 && len(a.waiting) == 0 {
			delete(s.apps, app)
		}
	}
	now := s.now()
	for id, t := range s.notUntil {
		if now.After(t) {
			delete(s.notUntil, id)
		}
	}
	for id, t := range s.owned {
		if now.After(t) {
			delete(s.owned, id)
		}
	}
	for id, f := range s.flows {
		// Forget the pace of endpoints with nothing going on once it is
		// back to normal (and its rate limit's window has passed).
		if st := s.eps[id]; st == nil && f.rate == 0 && f.concurrency() == f.maxConc && !f.pausedUntil.After(now) &&
			f.out == 0 && (f.limit == nil || now.Sub(f.lastEnd()) > f.limit.Per) {
			delete(s.flows, id)
			s.flowStates.Delete(id)
		}
	}
	for id, t := range s.parkLogged {
		if now.After(t) {
			delete(s.parkLogged, id)
		}
	}
	s.configs.forget(5 * s.cfg.Lease)
}

// beginStop stops taking deliveries: queued jobs and hand-offs are
// released, and only the requests in flight go on.
func (s *scheduler) beginStop() {
	s.stopping = true
	s.window.close()
	var queued []*job
	for _, st := range s.eps {
		queued = append(queued, st.queue...)
		st.queue = nil
	}
	for _, a := range s.apps {
		a.waiting = nil
	}
	s.waiting = nil
	s.release(queued)
}

// run is the scheduler's goroutine. It returns once stopped and no
// request is in flight, releasing hand-offs that arrive after.
func (s *scheduler) run(ctx context.Context) {
	defer close(s.stopped)
	defer s.closeHandoffs()
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel() // a probe still running gives up
		if s.probing {
			<-s.probed
		}
	}()
	var (
		wanted   = true
		discover = true
		ticker   = time.NewTicker(s.cfg.PollInterval)
		stop     = s.stop
	)
	defer ticker.Stop()
	for {
		if s.stopping {
			if s.busy == 0 {
				return
			}
		} else if wanted {
			if discover && s.discover(ctx) {
				discover = false
			}
			wanted = s.claimRound(ctx)
		}
		select {
		case <-s.wake:
			wanted = true
			if ids := s.takeHints(); ids == nil {
				discover = true
			} else {
				for _, id := range ids {
					s.addHot(id)
				}
			}
		case jobs := <-s.handoffs:
			s.accept(jobs)
		case p := <-s.probed:
			s.discovered(p)
			wanted = true
		case <-ticker.C:
			wanted, discover = true, true
			s.tick()
		case d := <-s.done:
			s.finished(d)
			// The endpoint's share of the window has room again, unless
			// the last round found too little for any claim.
			wanted = wanted || s.ready()
		case <-s.flowTimerC():
			s.flowAt = time.Time{}
			s.pump()
			wanted = true
		case <-stop:
			stop = nil
			s.beginStop()
		}
	}
}

// closeHandoffs makes later hand-offs release their jobs, and releases the
// ones waiting.
func (s *scheduler) closeHandoffs() {
	s.hoMu.Lock()
	s.hoClosed = true
	s.hoMu.Unlock()
	for {
		select {
		case jobs := <-s.handoffs:
			s.release(jobs)
		default:
			return
		}
	}
}
