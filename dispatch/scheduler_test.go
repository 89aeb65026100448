package dispatch

import (
	"context"

	"errors"
	"fmt"
	"github.com/heraldhq/herald/destination"
	"testing"
	"time"
)

// schedHarness drives a scheduler step by step, playing the workers.
type schedHarness struct {
	t     *testing.T
	s     *scheduler
	d     *fakeDriver
	w     *window
	clock *fakeClock
	work  chan *job
	// inFlight are the jobs handed to "workers", per delivery.
	inFlight map[string]*job
	sent     map[string]int
}

func newSchedHarness(t *testing.T, cfg schedConfig) *schedHarness {
	t.Helper()
	clock := newFakeClock()
	d := newFakeDriver()
	w := newWindow(max(2*cfg.Workers, cfg.BatchSize), queueFactor*cfg.PerEndpoint)
	configs := newEndpointConfigs(time.Hour, clock.Now, testEndpoints(t), prepareNoTarget)
	work := make(chan *job, cfg.Workers)
	if cfg.Lease == 0 {
		cfg.Lease = time.Minute
	}
	s := newScheduler(cfg, d, configs, w, discardLogger(), clock.Now, work)
	return &schedHarness{t: t, s: s, d: d, w: w, clock: clock, work: work, inFlight: make(map[string]*job), sent: make(map[string]int)}
}

// take moves the jobs handed to workers into inFlight.
func (h *schedHarness) take() {
	for {
		select {
		case j := <-h.work:
			if _, dup := h.inFlight[j.DeliveryID]; dup {
				h.t.Fatalf("delivery %s handed to two workers at once", j.DeliveryID)
			}
			h.inFlight[j.DeliveryID] = j
			h.sent[j.DeliveryID]++
		default:
			return
		}
	}
}

// finish completes in-flight jobs as the worker and recorder would: the
// worker reports to the scheduler, the recorder commits and frees room.
func (h *schedHarness) finish(n int) {
	for id, j := range h.inFlight {
		if n == 0 {
			return
		}
		n--
		delete(h.inFlight, id)
		h.s.finished(doneMsg{endpointID: j.EndpointID, sent: true, outcome: destination.Delivered})
		h.d.mu.Lock()
		h.d.finished[id] = DeliveryUpdate{Status: "SUCCEEDED"}
		delete(h.d.leased, id)
		h.d.mu.Unlock()
		h.w.release(j.EndpointID, j.AppID, 1)
		h.take()
	}
}

// check asserts the scheduler's invariants.
func (h *schedHarness) check() {
	h.t.Helper()
	per := map[string]int{}
	for _, j := range h.inFlight {
		per[j.EndpointID]++
	}
	if len(h.inFlight) > h.s.cfg.Workers || h.s.busy != len(h.inFlight) {
		h.t.Fatalf("%d requests in flight (scheduler counts %d), limit %d", len(h.inFlight), h.s.busy, h.s.cfg.Workers)
	}
	for ep, n := range per {
		if n > h.s.cfg.PerEndpoint {
			h.t.Fatalf("%d requests in flight to %s, limit %d", n, ep, h.s.cfg.PerEndpoint)
		}
	}
	if held, leased := h.w.held(), h.d.leasedCount(); held > h.w.max || leased > h.w.max || held != leased {
		h.t.Fatalf("window holds %d and the driver leases %d, limit %d", held, leased, h.w.max)
	}
}

func (h *schedHarness) round() {
	if h.s.discover(context.Background()) && h.s.probing {
		h.s.discovered(<-h.s.probed)
	}
	h.s.claimRound(context.Background())
	h.take()
	h.check()
}

func TestScheduler_KeepsRequestsInFlightWithinLimits(t *testing.T) {
	h := newSchedHarness(t, schedConfig{Worker: "w", Workers: 4, PerEndpoint: 2, BatchSize: 16, PollInterval: time.Second})
	for _, ep := range []string{"ep_a", "ep_b", "ep_c"} {
		h.d.add(ep, 50)
	}
	for i := 0; len(h.sent) < 150; i++ {
		if i > 1000 {
			t.Fatalf("only %d of 150 deliveries sent", len(h.sent))
		}
		h.round()
		h.finish(3)
		h.check()
	}
	for id, n := range h.sent {
		if n != 1 {
			t.Fatalf("delivery %s sent %d times", id, n)
		}
	}
}

// Forty hung endpoints (requests in flight that never end) must not make
// the engine hold more than its window, however much is due.
func TestScheduler_HungEndpointsHoldNoMoreThanTheWindow(t *testing.T) {
	h := newSchedHarness(t, schedConfig{Worker: "w", Workers: 128, PerEndpoint: 32, BatchSize: 256, PollInterval: time.Second})
	for i := range 40 {
		h.d.add(fmt.Sprintf("ep_%02d", i), 500)
	}
	for range 50 {
		h.round() // nothing ever finishes
	}
	if held := h.w.held(); held != h.w.max {
		t.Fatalf("window holds %d, want it full at %d", held, h.w.max)
	}
	// Hand-offs of new deliveries get no room either; a claim would still
	// find them in the store.
	if got := h.w.acquireHandOff("ep_00", "app_1", 1); got != 0 {
		t.Fatalf("a hand-off got room in a full window")
	}
	// Once enough requests finish for a batch, claims take the freed room.
	h.finish(h.s.claimMin() + 4)
	h.round()
	if held := h.w.held(); held != h.w.max {
		t.Fatalf("after requests finished the window holds %d, want it refilled to %d", held, h.w.max)
	}
}

func TestScheduler_OneFailingClaimDoesNotStopTheOthers(t *testing.T) {
	h := newSchedHarness(t, schedConfig{Worker: "w", Workers: 8, PerEndpoint: 4, BatchSize: 16, PollInterval: time.Second})
	h.d.add("ep_0broken", 10) // first in the ring
	h.d.add("ep_1", 10)
	h.d.add("ep_2", 10)
	h.d.claimErr["ep_0broken"] = errors.New("disk I/O error")
	h.round()
	per := map[string]int{}
	for _, j := range h.inFlight {
		per[j.EndpointID]++
	}
	if per["ep_1"] == 0 || per["ep_2"] == 0 || per["ep_0broken"] != 0 {
		t.Fatalf("in flight per endpoint = %v, want ep_1 and ep_2 served", per)
	}
	// The failing endpoint is left alone for a while, then tried again.
	before := h.d.claims
	h.round()
	if h.d.claims-before != 0 {
		t.Fatalf("the failing endpoint was claimed again at once (%d claims)", h.d.claims-before)
	}
	delete(h.d.claimErr, "ep_0broken")
	h.clock.Add(retryClaimAfter + time.Millisecond)
	for range 5 {
		h.finish(len(h.inFlight))
		h.round()
		for _, j := range h.inFlight {
			if j.EndpointID == "ep_0broken" {
				return
			}
		}
	}
	t.Fatal("the endpoint was never claimed again once its claims worked")
}

func TestScheduler_TakesNothingWhileTheRecorderCannotCommit(t *testing.T) {
	h := newSchedHarness(t, schedConfig{Worker: "w", Workers: 8, PerEndpoint: 4, BatchSize: 16, PollInterval: time.Second})
	healthy := false
	h.s.canCommit = func() bool { return healthy }
	h.d.add("ep_1", 10)
	h.round()
	if len(h.inFlight) != 0 || h.d.claims != 0 {
		t.Fatalf("claimed %d times and sent %d while the recorder could not commit", h.d.claims, len(h.inFlight))
	}
	healthy = true
	h.round()
	if len(h.inFlight) == 0 {
		t.Fatal("nothing sent once the recorder could commit again")
	}
}

func TestScheduler_StoppingReleasesQueuedJobsAndLaterHandOffs(t *testing.T) {
	h := newSchedHarness(t, schedConfig{Worker: "w", Workers: 2, PerEndpoint: 2, BatchSize: 16, PollInterval: time.Second})
	h.d.add("ep_1", 10)
	h.round()
	if len(h.inFlight) != 2 {
		t.Fatalf("%d in flight, want 2", len(h.inFlight))
	}
	h.s.beginStop()
	if held, leased := h.w.held(), h.d.leasedCount(); held != 2 || leased != 2 {
		t.Fatalf("after stopping the window holds %d and the driver leases %d, want only the 2 in flight", held, leased)
	}
	// A hand-off that was reserved just before the stop arrives late.
	j := &job{Job: Job{Lease: Lease{DeliveryID: "dlv_late", EndpointID: "ep_1"}}, counted: true}
	h.w.mu.Lock()
	h.w.total++
	h.w.byEndpoint["ep_1"]++
	h.w.mu.Unlock()
	h.s.accept([]*job{j})
	h.take()
	if _, sent := h.inFlight["dlv_late"]; sent || h.w.held() != 2 {
		t.Fatalf("a hand-off was accepted after the stop (window holds %d)", h.w.held())
	}
	if got := h.w.acquireHandOff("ep_1", "app_2", 1); got != 0 {
		t.Fatal("the window grants room after the stop")
	}
	h.s.claimRound(context.Background())
	h.take()
	if len(h.inFlight) != 2 {
		t.Fatalf("claimed after the stop: %d in flight", len(h.inFlight))
	}
}

func TestWindow_HandOffsLeaveTheReserveToClaims(t *testing.T) {
	w := newWindow(16, 8)
	got := 0
	for i := range 8 {
		got += w.acquireHandOff(fmt.Sprintf("ep_%d", i), fmt.Sprintf("app_%d", i), 8)
	}
	if got != 16-w.reserve {
		t.Fatalf("hand-offs got %d, want %d (all but the reserve)", got, 16-w.reserve)
	}
	if n := w.acquire("ep_x", "app_x", 8); n != w.reserve {
		t.Fatalf("a claim got %d, want the reserve %d", n, w.reserve)
	}
	if n := w.acquire("ep_y", "app_y", 1); n != 0 || w.held() != 16 {
		t.Fatalf("the window granted past its limit (held %d)", w.held())
	}
	w.release("ep_x", "app_x", w.reserve)
	if n := w.acquire("ep_0", "app_0", 8); n != 0 {
		t.Fatalf("ep_0 holds its per-endpoint limit already, yet got %d more", n)
	}
	if n := w.acquire("ep_1", "app_1", 8); n != 4 {
		t.Fatalf("ep_1 got %d, want the 4 left to it", n)
	}
}

func TestWindow_ResultsAwaitingTheRecorderHoldOnlyTheTotal(t *testing.T) {
	w := newWindow(16, 4)
	if n := w.acquire("ep_a", "app_a", 4); n != 4 {
		t.Fatalf("got %d, want the endpoint's share of 4", n)
	}
	for range 4 {
		w.leave("ep_a") // attempts ended; results wait for the recorder
	}
	if n := w.room("ep_a", "app_a"); n != 4 {
		t.Fatalf("room for ep_a after its attempts ended = %d, want its whole share of 4 again", n)
	}
	if n := w.acquire("ep_a", "app_a", 16); n != 4 || w.held() != 8 {
		t.Fatalf("got %d more (held %d), want 4 (held 8: the 4 results count until recorded)", n, w.held())
	}
	w.releaseLeft("app_a", 4)
	if w.held() != 4 || w.free() != 12 {
		t.Fatalf("after recording: held %d, free %d; want 4 and 12", w.held(), w.free())
	}
}

// TestWindow_OneAppLeavesTheRestToOthers is one app with many endpoints
// (a customer with a thousand of them, say): whatever it claims or is
// handed, it holds at most max − reserve, and another app then still gets
// room.
func TestWindow_OneAppLeavesTheRestToOthers(t *testing.T) {
	w := newWindow(64, 8)
	got := 0
	for i := range 100 {
		got += w.acquire(fmt.Sprintf("ep_%d", i), "app_busy", 8)
	}
	if got != 64-w.reserve {
		t.Fatalf("one app got %d, want %d (all but the reserve)", got, 64-w.reserve)
	}
	if n := w.acquire("ep_other", "app_quiet", 8); n != 8 {
		t.Fatalf("another app got %d, want a whole share of 8", n)
	}
	if n := w.acquireHandOff("ep_hand", "app_quiet", 1); n != 0 {
		t.Fatalf("a hand-off got room beyond max − reserve in all (%d)", n)
	}
}

// One app's many endpoints, all due, with the app holding its whole share
// of the window: a round of claims that the window refuses for all of them
// is futile, and a finished delivery must not start another until enough
// room is freed for a claim. Each round walks every hot endpoint, so before
// this every finished delivery of a 500-endpoint fan-out walked 500 of them
// for nothing (herald-bench wide: 0.54× the rate of 8a13244).
func TestScheduler_AFinishedDeliveryClaimsAgainOnlyOnceAClaimFits(t *testing.T) {
	// claimMin 4; a window of 16, of which one app may claim 12.
	h := newSchedHarness(t, schedConfig{Worker: "w", Workers: 8, PerEndpoint: 8, BatchSize: 16, PollInterval: time.Second})
	if h.s.claimMin() != 4 || h.w.max-h.w.reserve != 12 {
		t.Fatalf("claimMin %d, app share %d: the test assumes 4 and 12", h.s.claimMin(), h.w.max-h.w.reserve)
	}
	for i := range 40 {
		h.d.add(fmt.Sprintf("ep_%c%c", 'a'+i/26, 'a'+i%26), 6) // app_1, all of them
	}
	h.round() // two endpoints claim 6 each: the app's share is full
	if held := h.w.held(); held != 12 {
		t.Fatalf("the window holds %d after the first round, want the app's share of 12", held)
	}
	h.round()
	if !h.s.futile || h.s.ready() {
		t.Fatalf("a round the window refused for every endpoint is not futile (futile %v, ready %v)", h.s.futile, h.s.ready())
	}
	for i := 1; i < h.s.claimMin(); i++ {
		h.finish(1)
		if h.s.ready() {
			t.Fatalf("after %d finished deliveries the scheduler would claim again, though no claim fits before %d", i, h.s.claimMin())
		}
	}
	h.finish(1)
	if !h.s.ready() {
		t.Fatalf("%d deliveries finished, room for a claim, and the scheduler would not claim", h.s.claimMin())
	}
	h.round()
	if held := h.w.held(); held != 12 {
		t.Fatalf("the window holds %d after room for a claim was freed, want 12 again", held)
	}

	// One endpoint short of a claim by one: the first finished delivery
	// is enough.
	h = newSchedHarness(t, schedConfig{Worker: "w", Workers: 8, PerEndpoint: 8, BatchSize: 16, PollInterval: time.Second})
	h.d.add("ep_a", 40)
	h.w.acquireHandOff("ep_b", "app_1", 9) // another endpoint holds 9: the app has room for 3
	// h.round without its checks, which count the hand-off out.
	claimRound := func() {
		if h.s.discover(context.Background()) && h.s.probing {
			h.s.discovered(<-h.s.probed)
		}
		h.s.claimRound(context.Background())
		h.take()
	}
	claimRound()
	if !h.s.futile || h.s.futileBest != 3 {
		t.Fatalf("futile %v with best %d, want a futile round that offered 3", h.s.futile, h.s.futileBest)
	}
	if h.s.ready() {
		t.Fatal("the 3 the round took and gave back counted as freed: the scheduler would claim again with room for 3")
	}
	h.w.release("ep_b", "app_1", 1)
	if !h.s.ready() {
		t.Fatal("one freed delivery makes room for a claim of 4, and the scheduler would not claim")
	}
	claimRound()
	if len(h.inFlight) != 4 {
		t.Fatalf("%d deliveries in flight, want the 4 that fit", len(h.inFlight))
	}
}

// slowStore is the fake store with a due probe that answers only once
// released, and a hook run at each claim: a database busy with another
// app's deliveries.
type slowStore struct {
	*fakeDriver
	probeStarted chan struct{}
	release      chan struct{}
	onClaim      func(endpointID string)
}

func (d *slowStore) Due(ctx context.Context, now time.Time) ([]string, error) {
	select {
	case d.probeStarted <- struct{}{}:
	default:
	}
	select {
	case <-d.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return d.fakeDriver.Due(ctx, now)
}

func (d *slowStore) Claim(ctx context.Context, p ClaimParams) ([]Job, error) {
	if d.onClaim != nil {
		d.onClaim(p.EndpointID)
	}
	return d.fakeDriver.Claim(ctx, p)
}

// handedOff returns a fresh publish's job for ep_q of app_1, holding its
// room in the window as the publisher's would.
func handedOff(t *testing.T, w *window, id string) *job {
	t.Helper()
	if w.acquireHandOff("ep_q", "app_1", 1) != 1 {
		t.Fatal("no room in the window for a hand-off")
	}
	return &job{Job: Job{Lease: Lease{DeliveryID: id, EndpointID: "ep_q"}, AppID: "app_1"}, counted: true,
		attempt: attempt{DeliveryID: id, Number: 1}}
}

// A due probe that takes long on a busy store (seconds were seen on
// PostgreSQL next to an app publishing large fan-outs) must not hold up a
// fresh publish: the probe runs beside the scheduler, which sends the
// hand-off meanwhile.
func TestScheduler_SendsHandOffsWhileTheDueProbeIsSlow(t *testing.T) {
	clock := newFakeClock()
	d := &slowStore{fakeDriver: newFakeDriver(), probeStarted: make(chan struct{}, 1), release: make(chan struct{})}
	w := newWindow(64, 8)
	work := make(chan *job, 4)
	s := newScheduler(schedConfig{Worker: "w", Workers: 4, PerEndpoint: 2, BatchSize: 16, Lease: time.Minute, PollInterval: time.Hour},
		d, newEndpointConfigs(time.Hour, clock.Now, testEndpoints(t), prepareNoTarget), w, discardLogger(), clock.Now, work)
	go s.run(context.Background())
	defer func() {
		close(s.stop)
		<-s.stopped
	}()
	select {
	case <-d.probeStarted:
	case <-time.After(10 * time.Second):
		t.Fatal("the scheduler never probed for due deliveries")
	}
	s.handOff([]*job{handedOff(t, w, "dlv_fresh")})
	if j := nextSent(t, s, work, "the hand-off waited for the due probe to answer"); j.DeliveryID != "dlv_fresh" {
		t.Fatalf("sent %s, want the hand-off", j.DeliveryID)
	}
	// Once the probe answers, what it found is claimed and sent.
	d.add("ep_2", 1)
	close(d.release)
	if j := nextSent(t, s, work, "what the due probe found was never claimed"); j.EndpointID != "ep_2" {
		t.Fatalf("sent a delivery of %s, want ep_2's", j.EndpointID)
	}
}

// nextSent plays a worker: it takes the next job the scheduler sends and
// reports it done, or fails with stuck if none comes.
func nextSent(t *testing.T, s *scheduler, work <-chan *job, stuck string) *job {
	t.Helper()
	select {
	case j := <-work:
		s.done <- doneMsg{endpointID: j.EndpointID}
		return j
	case <-time.After(10 * time.Second):
		t.Fatal(stuck)
		return nil
	}
}

// A round of claims over a busy app's many endpoints takes one round trip
// per endpoint; a publish handed off meanwhile goes out after the claim
// under way, not after the whole round.
func TestScheduler_HandOffsGoOutBetweenTheClaimsOfARound(t *testing.T) {
	h := newSchedHarness(t, schedConfig{Worker: "w", Workers: 64, PerEndpoint: 2, BatchSize: 4, PollInterval: time.Second})
	d := &slowStore{fakeDriver: h.d}
	h.s.driver = d
	for i := range 10 {
		d.add(fmt.Sprintf("ep_%d0", i), 20) // app_1's busy endpoints
	}
	h.s.discovered(probe{ids: mustDue(t, d.fakeDriver)})
	claims, sentAt := 0, 0
	d.onClaim = func(string) {
		claims++
		switch claims {
		case 2:
			h.s.handOff([]*job{handedOff(t, h.w, "dlv_fresh")})
		case 4:
			for len(h.work) > 0 {
				if j := <-h.work; j.DeliveryID == "dlv_fresh" {
					sentAt = claims
				}
			}
		}
	}
	h.s.claimRound(context.Background())
	if claims < 10 {
		t.Fatalf("the round made %d claims, want one per endpoint", claims)
	}
	if sentAt == 0 {
		t.Fatal("the hand-off was not sent before the round's fourth claim: it waited for the whole round")
	}
}

func mustDue(t *testing.T, d Driver) []string {
	t.Helper()
	ids, err := d.Due(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ids
}
