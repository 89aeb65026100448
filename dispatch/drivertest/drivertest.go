// Package drivertest is the conformance suite of dispatch.Driver: the rules
// every storage driver must keep (claim order, leases, fencing of results,
// idempotent inserts, cancel and requeue around leased rows, recovery
// after a crash), checked through the Driver interface only. Each driver's
// tests call Run with a way to open it on a fresh database.
package drivertest

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/heraldhq/herald/dispatch"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/deliverystat"
	"github.com/heraldhq/herald/tenant"
	"github.com/heraldhq/herald/webhook"
)

// Harness opens drivers on one fresh database.
type Harness struct {
	// Client is an ent client of the database, for fixtures.
	Client *ent.Client
	// Open returns a new driver on the database, as a new process would
	// (a restart after a crash, or another replica).
	Open func() dispatch.Driver
}

// Config describes the driver under test.
type Config struct {
	// New returns a harness on a fresh, migrated database. It is called
	// once per test.
	New func(t *testing.T) Harness
	// Shared reports that drivers opened on one database see each other's
	// leases (their leases live in the database), so they may run at
	// once. A driver that keeps leases in memory is only ever reopened
	// after the previous one is gone.
	Shared bool
}

// Run runs the suite.
func Run(t *testing.T, cfg Config) {
	tests := []struct {
		name   string
		shared bool
		f      func(t *testing.T, s *suite)
	}{
		{"ClaimReturnsDueDeliveriesOldestFirst", false, testClaimOrder},
		{"ClaimResumesAfterCursorWithinOneInstant", false, testClaimCursor},
		{"ClaimedDeliveriesAreNotClaimedAgain", false, testClaimedNotReclaimed},
		{"OrderedClaimTakesEachKeysOldestUnfinished", false, testOrderedClaim},
		{"ReleasedDeliveriesAreDueAgain", false, testRelease},
		{"HandedOffDeliveriesAreLeasedFromTheStart", false, testHandOffLeased},
		{"RolledBackHandOffLeavesNoLease", false, testHandOffRollback},
		{"ResultIsAppliedOnlyUnderItsLease", false, testFencing},
		{"FinishedDeliveryIsNotFinishedAgain", false, testFinishOnce},
		{"IdempotencyKeyReturnsStoredEvent", false, testIdempotency},
		{"FinishRecordsABatchEachOnItsLease", false, testFinishBatch},
		{"RecentAttemptEndsAreTheLatestOfTheEndpoint", false, testRecentAttemptEnds},
		{"CancelSkipsLeasedDeliveriesInBatches", false, testCancel},
		{"RequeueSkipsLeasedDeliveries", false, testRequeueLeased},
		{"RequeueStaysInItsApp", false, testRequeueApp},
		{"ReplayPagesThroughEveryMatch", false, testReplayPages},
		{"DueListsEndpointsWithDueDeliveries", false, testDue},
		{"CountersAndDisable", false, testCountersAndDisable},
		{"UnfinishedDeliveriesAreDueAfterACrash", false, testCrashRecovery},
		{"SavepointRollbackUndoesOnlyItsPart", false, testSavepoints},
		{"BacklogCountsDueUnleasedDeliveries", false, testBacklog},
		{"StatsAddUpPerBucket", false, testStats},
		{"ClaimReturnsTheEventsTraceParent", false, testTraceParent},
		{"LeaseHeldByAnotherDriverIsRespected", true, testSharedLeases},
		{"ExpiredLeaseIsClaimedByAnotherDriverAndFencesTheFirst", true, testSharedExpiry},
	}
	for _, tt := range tests {
		if tt.shared && !cfg.Shared {
			continue // the driver's leases are private to one process
		}
		t.Run(tt.name, func(t *testing.T) {
			h := cfg.New(t)
			s := &suite{t: t, h: h, d: h.Open(), now: time.Now().UTC().Truncate(time.Millisecond)}
			t.Cleanup(func() { s.d.Close() })
			s.fixtures()
			tt.f(t, s)
		})
	}
}

type suite struct {
	t   *testing.T
	h   Harness
	d   dispatch.Driver
	now time.Time
	seq int
}

const (
	app1, app2 = "app_01DRVTEST0000000000000001", "app_01DRVTEST0000000000000002"
	ep1, ep2   = "ep_01DRVTEST00000000000000001", "ep_01DRVTEST00000000000000002"
	ep3        = "ep_01DRVTEST00000000000000003" // in app2
	worker     = "w-test"
	lease      = time.Minute
)

func ctx() context.Context { return tenant.System(context.Background()) }

// fixtures creates two apps and three active endpoints.
func (s *suite) fixtures() {
	c := s.h.Client
	for _, a := range []string{app1, app2} {
		if err := c.App.Create().SetID(a).SetName(a).Exec(ctx()); err != nil {
			s.t.Fatalf("create app: %v", err)
		}
	}
	for _, e := range []struct{ id, app string }{{ep1, app1}, {ep2, app1}, {ep3, app2}} {
		err := c.Endpoint.Create().SetID(e.id).SetAppID(e.app).SetName(e.id).SetURL("https://example.com/" + e.id).
			SetEventTypes([]string{"*"}).SetAuth(webhook.Auth{Type: webhook.AuthNone}).SetRetryPolicy(webhook.DefaultRetryPolicy()).
			SetSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").Exec(ctx())
		if err != nil {
			s.t.Fatalf("create endpoint: %v", err)
		}
	}
}

func (s *suite) id(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s_01DRVTEST%017d", prefix, s.seq)
}

// publish stores one event with a delivery to each endpoint, created (and
// due) at the given time, optionally leased; it returns the delivery IDs.
func (s *suite) publish(app string, at time.Time, l *dispatch.Lease, endpoints ...string) []string {
	s.t.Helper()
	tx, err := s.d.Begin(ctx())
	if err != nil {
		s.t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck
	ev := &dispatch.EventRow{ID: s.id("evt"), AppID: app, EventType: "order.created", Payload: []byte(`{"n":1}`), DeliveryCount: len(endpoints), CreatedAt: at}
	if _, err := tx.InsertEvents(ctx(), []*dispatch.EventRow{ev}); err != nil {
		s.t.Fatal(err)
	}
	var ids []string
	var rows []dispatch.DeliveryRow
	for _, ep := range endpoints {
		r := dispatch.DeliveryRow{ID: s.id("dlv"), AppID: app, EventID: ev.ID, EndpointID: ep, EventType: ev.EventType, CreatedAt: at}
		rows = append(rows, r)
		ids = append(ids, r.ID)
	}
	if err := tx.InsertDeliveries(ctx(), rows, l); err != nil {
		s.t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		s.t.Fatal(err)
	}
	return ids
}

func (s *suite) claim(d dispatch.Driver, ep string, at time.Time, limit int, after dispatch.Cursor) []dispatch.Job {
	s.t.Helper()
	jobs, err := d.Claim(ctx(), dispatch.ClaimParams{Worker: worker, EndpointID: ep, Now: at, Lease: lease, Limit: limit, After: after})
	if err != nil {
		s.t.Fatalf("claim: %v", err)
	}
	return jobs
}

func idsOf(jobs []dispatch.Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.DeliveryID
	}
	return out
}

func leasesOf(jobs []dispatch.Job) []dispatch.Lease {
	out := make([]dispatch.Lease, len(jobs))
	for i, j := range jobs {
		out[i] = j.Lease
	}
	return out
}

// finish records a successful attempt of a job and reports whether it was
// applied.
func (s *suite) finish(d dispatch.Driver, l dispatch.Lease, status string) bool {
	s.t.Helper()
	tx, err := d.Begin(ctx())
	if err != nil {
		s.t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck
	at := s.now.Add(time.Second)
	u := dispatch.DeliveryUpdate{Status: status, AttemptCount: 1, LastAttemptAt: &at, LastResponseStatus: 200, UpdatedAt: at}
	if status == "RETRYING" {
		next := at.Add(time.Hour)
		u.NextAttemptAt = &next
	} else {
		u.CompletedAt = &at
	}
	a := &dispatch.AttemptRow{ID: s.id("att"), AppID: app1, DeliveryID: l.DeliveryID, EndpointID: l.EndpointID, Number: 1,
		Trigger: "SCHEDULED", Succeeded: status == "SUCCEEDED", RequestURL: "https://example.com", RequestHeaders: []byte("[]"),
		ResponseStatus: 200, ResponseHeaders: []byte("[]"), StartedAt: at, CompletedAt: at}
	applied, err := tx.Finish(ctx(), []dispatch.Completion{{Lease: l, Attempt: a, Update: u}})
	if err != nil {
		s.t.Fatalf("finish: %v", err)
	}
	if err := tx.Commit(); err != nil {
		s.t.Fatal(err)
	}
	return applied[0]
}

func (s *suite) status(id string) string {
	s.t.Helper()
	d, err := s.h.Client.Delivery.Get(ctx(), id)
	if err != nil {
		s.t.Fatal(err)
	}
	return d.Status.String()
}

func wantIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func testClaimOrder(t *testing.T, s *suite) {
	late := s.publish(app1, s.now.Add(-time.Second), nil, ep1)
	early := s.publish(app1, s.now.Add(-time.Minute), nil, ep1)
	s.publish(app1, s.now.Add(time.Hour), nil, ep1)  // not due yet
	s.publish(app1, s.now.Add(-time.Hour), nil, ep2) // another endpoint
	jobs := s.claim(s.d, ep1, s.now, 10, dispatch.Cursor{})
	wantIDs(t, "claimed", idsOf(jobs), append(early, late...))
	for _, j := range jobs {
		if j.EndpointID != ep1 || j.AppID != app1 || j.EventType != "order.created" || string(j.Payload) != `{"n":1}` ||
			j.Trigger != "SCHEDULED" || j.Token == "" || !j.Until.After(s.now) {
			t.Fatalf("claimed job = %+v", j)
		}
	}
}

// publishKeyed stores one event per key, in that order, with deliveries
// to ep created (and due) a millisecond apart from at; a nil key is an
// event without one. It returns the delivery IDs.
func (s *suite) publishKeyed(ep string, at time.Time, keys []*string) []string {
	s.t.Helper()
	tx, err := s.d.Begin(ctx())
	if err != nil {
		s.t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck
	var evs []*dispatch.EventRow
	var rows []dispatch.DeliveryRow
	for i, k := range keys {
		created := at.Add(time.Duration(i) * time.Millisecond)
		ev := &dispatch.EventRow{ID: s.id("evt"), AppID: app1, EventType: "order.created", Payload: []byte(`{"n":1}`), DeliveryCount: 1, CreatedAt: created}
		evs = append(evs, ev)
		rows = append(rows, dispatch.DeliveryRow{ID: s.id("dlv"), AppID: app1, EventID: ev.ID, EndpointID: ep, EventType: ev.EventType,
			CreatedAt: created, OrderingKey: k})
	}
	if _, err := tx.InsertEvents(ctx(), evs); err != nil {
		s.t.Fatal(err)
	}
	if err := tx.InsertDeliveries(ctx(), rows, nil); err != nil {
		s.t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		s.t.Fatal(err)
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	return ids
}

// testOrderedClaim: an ordered claim takes a key's oldest unfinished
// delivery only, and finds the head of a key queued behind more held-back
// deliveries of another key than any claim reads in due order.
func testOrderedClaim(t *testing.T, s *suite) {
	a, b := "cus_a", "cus_b"
	keys := []*string{nil}
	for range 600 {
		keys = append(keys, &a)
	}
	keys = append(keys, &b, &b)
	ids := s.publishKeyed(ep1, s.now.Add(-time.Hour), keys)
	unkeyed, as, bs := ids[0], ids[1:601], ids[601:]
	claim := func() []dispatch.Job {
		t.Helper()
		jobs, err := s.d.Claim(ctx(), dispatch.ClaimParams{Worker: worker, EndpointID: ep1, Now: s.now, Lease: lease, Limit: 10, Ordered: true})
		if err != nil {
			t.Fatalf("claim: %v", err)
		}
		return jobs
	}
	first := claim()
	wantIDs(t, "first ordered claim", idsOf(first), []string{unkeyed, as[0], bs[0]})
	wantIDs(t, "claim while each key's head is leased", idsOf(claim()), nil)
	for _, j := range first {
		if j.DeliveryID == as[0] && !s.finish(s.d, j.Lease, "SUCCEEDED") {
			t.Fatal("finishing the head of a key was not applied")
		}
	}
	wantIDs(t, "claim after the head of one key succeeded", idsOf(claim()), as[1:2])
}

func testClaimCursor(t *testing.T, s *suite) {
	var all []string
	for range 5 {
		all = append(all, s.publish(app1, s.now.Add(-time.Second), nil, ep1)...) // one instant
	}
	first := s.claim(s.d, ep1, s.now, 2, dispatch.Cursor{})
	second := s.claim(s.d, ep1, s.now, 10, first[len(first)-1].Position)
	got := append(idsOf(first), idsOf(second)...)
	slices.Sort(got)
	want := slices.Clone(all)
	slices.Sort(want)
	wantIDs(t, "claimed over two calls", got, want)
}

func testClaimedNotReclaimed(t *testing.T, s *suite) {
	s.publish(app1, s.now.Add(-time.Second), nil, ep1, ep2)
	s.publish(app1, s.now.Add(-time.Second), nil, ep1)
	if n := len(s.claim(s.d, ep1, s.now, 10, dispatch.Cursor{})); n != 2 {
		t.Fatalf("first claim got %d, want 2", n)
	}
	if jobs := s.claim(s.d, ep1, s.now, 10, dispatch.Cursor{}); len(jobs) != 0 {
		t.Fatalf("second claim got %v, want nothing: they are leased", idsOf(jobs))
	}
}

func testRelease(t *testing.T, s *suite) {
	ids := s.publish(app1, s.now.Add(-time.Second), nil, ep1)
	jobs := s.claim(s.d, ep1, s.now, 10, dispatch.Cursor{})
	if err := s.d.Release(ctx(), leasesOf(jobs), s.now); err != nil {
		t.Fatal(err)
	}
	again := s.claim(s.d, ep1, s.now.Add(time.Millisecond), 10, dispatch.Cursor{})
	wantIDs(t, "claimed after release", idsOf(again), ids)
	if st := s.status(ids[0]); st != "PENDING" && st != "SENDING" {
		t.Fatalf("status after release and claim = %s", st)
	}
}

func testHandOffLeased(t *testing.T, s *suite) {
	l := &dispatch.Lease{Token: worker, Until: s.now.Add(lease)}
	ids := s.publish(app1, s.now.Add(-time.Second), l, ep1)
	if jobs := s.claim(s.d, ep1, s.now, 10, dispatch.Cursor{}); len(jobs) != 0 {
		t.Fatalf("claim took handed-off deliveries %v", idsOf(jobs))
	}
	if !s.finish(s.d, dispatch.Lease{DeliveryID: ids[0], EndpointID: ep1, Token: worker, Until: l.Until}, "SUCCEEDED") {
		t.Fatal("the hand-off's lease could not finish its delivery")
	}
	if st := s.status(ids[0]); st != "SUCCEEDED" {
		t.Fatalf("status = %s, want SUCCEEDED", st)
	}
}

func testHandOffRollback(t *testing.T, s *suite) {
	tx, err := s.d.Begin(ctx())
	if err != nil {
		t.Fatal(err)
	}
	ev := &dispatch.EventRow{ID: s.id("evt"), AppID: app1, EventType: "order.created", Payload: []byte(`{}`), CreatedAt: s.now}
	if _, err := tx.InsertEvents(ctx(), []*dispatch.EventRow{ev}); err != nil {
		t.Fatal(err)
	}
	row := dispatch.DeliveryRow{ID: s.id("dlv"), AppID: app1, EventID: ev.ID, EndpointID: ep1, EventType: ev.EventType, CreatedAt: s.now}
	if err := tx.InsertDeliveries(ctx(), []dispatch.DeliveryRow{row}, &dispatch.Lease{Token: worker, Until: s.now.Add(lease)}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	// The same IDs inserted again without a lease are claimable.
	s.seq -= 2
	ids := s.publish(app1, s.now, nil, ep1)
	if ids[0] != row.ID {
		t.Fatalf("fixture IDs differ: %s vs %s", ids[0], row.ID)
	}
	wantIDs(t, "claimed", idsOf(s.claim(s.d, ep1, s.now, 10, dispatch.Cursor{})), ids)
}

func testFencing(t *testing.T, s *suite) {
	ids := s.publish(app1, s.now.Add(-time.Second), nil, ep1)
	jobs := s.claim(s.d, ep1, s.now, 10, dispatch.Cursor{})
	old := jobs[0].Lease
	if err := s.d.Release(ctx(), leasesOf(jobs), s.now); err != nil {
		t.Fatal(err)
	}
	if s.finish(s.d, old, "SUCCEEDED") {
		t.Fatal("a result was applied under a released lease")
	}
	if st := s.status(ids[0]); st != "PENDING" {
		t.Fatalf("status = %s after a stale result, want PENDING", st)
	}
	again := s.claim(s.d, ep1, s.now.Add(time.Millisecond), 10, dispatch.Cursor{})
	if len(again) != 1 {
		t.Fatalf("claim after release got %d", len(again))
	}
	if !s.finish(s.d, again[0].Lease, "RETRYING") {
		t.Fatal("the current lease's result was not applied")
	}
	if st := s.status(ids[0]); st != "RETRYING" {
		t.Fatalf("status = %s, want RETRYING", st)
	}
}

func testFinishOnce(t *testing.T, s *suite) {
	s.publish(app1, s.now.Add(-time.Second), nil, ep1)
	jobs := s.claim(s.d, ep1, s.now, 10, dispatch.Cursor{})
	if !s.finish(s.d, jobs[0].Lease, "SUCCEEDED") {
		t.Fatal("first result not applied")
	}
	if s.finish(s.d, jobs[0].Lease, "RETRYING") {
		t.Fatal("a second result of a finished delivery was applied")
	}
	if st := s.status(jobs[0].DeliveryID); st != "SUCCEEDED" {
		t.Fatalf("status = %s, want SUCCEEDED", st)
	}
	if jobs := s.claim(s.d, ep1, s.now.Add(2*lease), 10, dispatch.Cursor{}); len(jobs) != 0 {
		t.Fatalf("a finished delivery was claimed: %v", idsOf(jobs))
	}
}

func testIdempotency(t *testing.T, s *suite) {
	tx, err := s.d.Begin(ctx())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck
	row := func(app, key string) *dispatch.EventRow {
		return &dispatch.EventRow{ID: s.id("evt"), AppID: app, EventType: "order.paid", Payload: []byte(`{"a":1}`),
			IdempotencyKey: key, DeliveryCount: 3, CreatedAt: s.now}
	}
	first := row(app1, "key-1")
	existing, err := tx.InsertEvents(ctx(), []*dispatch.EventRow{first, row(app1, ""), row(app1, "key-1"), row(app2, "key-1")})
	if err != nil {
		t.Fatal(err)
	}
	if existing[0] != nil || existing[1] != nil || existing[3] != nil {
		t.Fatalf("new events reported as existing: %+v", existing)
	}
	old := existing[2]
	if old == nil || old.ID != first.ID || old.EventType != "order.paid" || string(old.Payload) != `{"a":1}` || old.DeliveryCount != 3 || old.IdempotencyKey != "key-1" {
		t.Fatalf("a key repeated in one call returned %+v, want the first event", old)
	}
	existing, err = tx.InsertEvents(ctx(), []*dispatch.EventRow{row(app1, "key-1")})
	if err != nil {
		t.Fatal(err)
	}
	if existing[0] == nil || existing[0].ID != first.ID {
		t.Fatalf("a later insert returned %+v, want the first event", existing[0])
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	n, err := s.h.Client.Event.Query().Count(ctx())
	if err != nil || n != 3 {
		t.Fatalf("stored %d events, %v; want 3", n, err)
	}
}

// testFinishBatch records several results in one call: each is applied
// or not on its own lease.
func testFinishBatch(t *testing.T, s *suite) {
	for range 3 {
		s.publish(app1, s.now.Add(-time.Second), nil, ep1)
	}
	jobs := s.claim(s.d, ep1, s.now, 10, dispatch.Cursor{})
	if err := s.d.Release(ctx(), leasesOf(jobs[1:2]), s.now); err != nil {
		t.Fatal(err)
	}
	tx, err := s.d.Begin(ctx())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck
	at := s.now.Add(time.Second)
	var cs []dispatch.Completion
	for _, j := range jobs {
		cs = append(cs, dispatch.Completion{Lease: j.Lease, Update: dispatch.DeliveryUpdate{Status: "SUCCEEDED", AttemptCount: 1, CompletedAt: &at, UpdatedAt: at},
			Attempt: &dispatch.AttemptRow{ID: s.id("att"), AppID: app1, DeliveryID: j.DeliveryID, EndpointID: ep1, Number: 1, Trigger: "SCHEDULED",
				Succeeded: true, RequestURL: "https://example.com", RequestHeaders: []byte("[]"), ResponseStatus: 200,
				ResponseHeaders: []byte(`[{"name":"X","value":"\u00e9"}]`), ResponseBody: "ok \x00 é", StartedAt: at, CompletedAt: at}})
	}
	applied, err := tx.Finish(ctx(), cs)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(applied, []bool{true, false, true}) {
		t.Fatalf("applied = %v, want the released one left alone", applied)
	}
	if s.status(jobs[0].DeliveryID) != "SUCCEEDED" || s.status(jobs[1].DeliveryID) == "SUCCEEDED" || s.status(jobs[2].DeliveryID) != "SUCCEEDED" {
		t.Fatal("statuses do not match what was applied")
	}
	// Every attempt is stored, the stale one too: it was sent.
	n, err := s.h.Client.Attempt.Query().Count(ctx())
	if err != nil || n != 3 {
		t.Fatalf("stored %d attempts, %v; want 3", n, err)
	}
}

func testRecentAttemptEnds(t *testing.T, s *suite) {
	for range 4 {
		s.publish(app1, s.now.Add(-time.Second), nil, ep1)
	}
	s.publish(app1, s.now.Add(-time.Second), nil, ep2)
	jobs := s.claim(s.d, ep1, s.now, 10, dispatch.Cursor{})
	tx, err := s.d.Begin(ctx())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck
	var cs []dispatch.Completion
	var ends []time.Time
	for i, j := range jobs {
		at := s.now.Add(time.Duration(i+1) * time.Second)
		ends = append(ends, at)
		cs = append(cs, dispatch.Completion{Lease: j.Lease, Update: dispatch.DeliveryUpdate{Status: "SUCCEEDED", AttemptCount: 1, CompletedAt: &at, UpdatedAt: at},
			Attempt: &dispatch.AttemptRow{ID: s.id("att"), AppID: app1, DeliveryID: j.DeliveryID, EndpointID: ep1, Number: 1, Trigger: "SCHEDULED",
				Succeeded: true, RequestURL: "https://example.com", RequestHeaders: []byte("[]"), ResponseStatus: 200,
				ResponseHeaders: []byte("[]"), StartedAt: at.Add(-time.Millisecond), CompletedAt: at}})
	}
	if _, err := tx.Finish(ctx(), cs); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		ep    string
		since time.Time
		n     int
		want  []time.Time
	}{
		{ep1, s.now, 10, ends},
		{ep1, s.now, 2, ends[2:]},
		{ep1, ends[1], 10, ends[2:]},
		{ep2, s.now.Add(-time.Hour), 10, nil},
	} {
		got, err := s.d.RecentAttemptEnds(ctx(), tt.ep, tt.since, tt.n)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(tt.want) {
			t.Fatalf("RecentAttemptEnds(%s, %s, %d) = %v, want %v", tt.ep, tt.since, tt.n, got, tt.want)
		}
		for i := range got {
			if !got[i].Equal(tt.want[i]) {
				t.Fatalf("RecentAttemptEnds(%s, %s, %d) = %v, want %v", tt.ep, tt.since, tt.n, got, tt.want)
			}
		}
	}
}

func testCancel(t *testing.T, s *suite) {
	var ids []string
	for range 5 {
		ids = append(ids, s.publish(app1, s.now.Add(-time.Second), nil, ep1)...)
	}
	leased := s.claim(s.d, ep1, s.now, 2, dispatch.Cursor{})
	var cancelled []string
	for {
		refs, err := s.d.Cancel(ctx(), dispatch.CancelParams{EndpointID: ep1, Reason: "endpoint disabled", Limit: 2, Now: s.now})
		if err != nil {
			t.Fatal(err)
		}
		if len(refs) > 2 {
			t.Fatalf("cancel batch of %d, limit 2", len(refs))
		}
		for _, r := range refs {
			if r.Status != "FAILED" || r.AppID != app1 || r.EndpointID != ep1 {
				t.Fatalf("cancelled %+v", r)
			}
			cancelled = append(cancelled, r.ID)
		}
		if len(refs) < 2 {
			break
		}
	}
	slices.Sort(cancelled)
	var want []string
	for _, id := range ids {
		if !slices.Contains(idsOf(leased), id) {
			want = append(want, id)
		}
	}
	slices.Sort(want)
	wantIDs(t, "cancelled", cancelled, want)
	for _, j := range leased {
		if st := s.status(j.DeliveryID); st == "FAILED" {
			t.Fatalf("leased delivery %s was cancelled", j.DeliveryID)
		}
	}
}

func testRequeueLeased(t *testing.T, s *suite) {
	ids := s.publish(app1, s.now.Add(-time.Second), nil, ep1)
	jobs := s.claim(s.d, ep1, s.now, 10, dispatch.Cursor{})
	res, err := s.d.Requeue(ctx(), dispatch.RequeueParams{AppID: app1, DeliveryIDs: ids, Statuses: []string{"PENDING", "RETRYING", "SENDING"}, Now: s.now})
	if err != nil {
		t.Fatal(err)
	}
	if res.Leased != 1 || len(res.Requeued) != 0 {
		t.Fatalf("requeue of a leased delivery = %+v, want it skipped as leased", res)
	}
	if !s.finish(s.d, jobs[0].Lease, "RETRYING") {
		t.Fatal("the lease was lost to a refused requeue")
	}
	res, err = s.d.Requeue(ctx(), dispatch.RequeueParams{AppID: app1, DeliveryIDs: ids, Statuses: []string{"RETRYING"}, Now: s.now})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Requeued) != 1 || res.Requeued[0].Status != "RETRYING" {
		t.Fatalf("requeue after the attempt = %+v", res)
	}
	again := s.claim(s.d, ep1, s.now.Add(time.Millisecond), 10, dispatch.Cursor{})
	if len(again) != 1 || again[0].Trigger != "MANUAL_RETRY" {
		t.Fatalf("claim after requeue = %+v, want the delivery with trigger MANUAL_RETRY", again)
	}
}

func testRequeueApp(t *testing.T, s *suite) {
	other := s.publish(app2, s.now.Add(-time.Second), nil, ep3)
	jobs := s.claim(s.d, ep3, s.now, 10, dispatch.Cursor{})
	s.finish(s.d, jobs[0].Lease, "SUCCEEDED")
	res, err := s.d.Requeue(ctx(), dispatch.RequeueParams{AppID: app1, DeliveryIDs: other, Statuses: []string{"SUCCEEDED"}, Now: s.now})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Requeued) != 0 || s.status(other[0]) != "SUCCEEDED" {
		t.Fatalf("app1 requeued app2's delivery: %+v", res)
	}
	res, err = s.d.Requeue(ctx(), dispatch.RequeueParams{AppID: app1, EndpointID: ep3, Since: s.now.Add(-time.Hour), Statuses: []string{"SUCCEEDED"}, Limit: 10, Now: s.now})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Requeued) != 0 {
		t.Fatalf("app1 replayed app2's endpoint: %+v", res)
	}
}

func testReplayPages(t *testing.T, s *suite) {
	var want []string
	for i := range 7 {
		ids := s.publish(app1, s.now.Add(time.Duration(i-10)*time.Second), nil, ep1)
		jobs := s.claim(s.d, ep1, s.now, 10, dispatch.Cursor{})
		s.finish(s.d, jobs[0].Lease, "SUCCEEDED")
		if i >= 2 {
			want = append(want, ids...)
		}
	}
	var got []string
	pos := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("replay does not end")
		}
		res, err := s.d.Requeue(ctx(), dispatch.RequeueParams{AppID: app1, EndpointID: ep1, Since: s.now.Add(-8 * time.Second),
			Statuses: []string{"SUCCEEDED"}, Limit: 2, After: pos, Now: s.now})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Requeued {
			got = append(got, r.ID)
		}
		if !res.More {
			break
		}
		pos = res.Next
	}
	slices.Sort(got)
	slices.Sort(want)
	wantIDs(t, "replayed", got, want)
}

func testDue(t *testing.T, s *suite) {
	s.publish(app1, s.now.Add(-time.Second), nil, ep1)
	s.publish(app1, s.now.Add(time.Hour), nil, ep2)
	due, err := s.d.Due(ctx(), s.now)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(due, []string{ep1}) {
		t.Fatalf("due endpoints = %v, want [%s]", due, ep1)
	}
}

func testCountersAndDisable(t *testing.T, s *suite) {
	tx, err := s.d.Begin(ctx())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck
	at := s.now
	n, err := tx.AddCounters(ctx(), dispatch.CounterDelta{EndpointID: ep1, Failures: 3, LastFailure: &at, Consecutive: 2})
	if err != nil || n != 2 {
		t.Fatalf("consecutive = %d, %v; want 2", n, err)
	}
	n, err = tx.AddCounters(ctx(), dispatch.CounterDelta{EndpointID: ep1, Successes: 1, LastSuccess: &at, Reset: true, Consecutive: 1})
	if err != nil || n != 1 {
		t.Fatalf("consecutive after a reset = %d, %v; want 1", n, err)
	}
	states, err := tx.EndpointStates(ctx(), []string{ep1, "ep_missing"})
	if err != nil || !states[ep1].Active || states[ep1].Deleted || len(states) != 1 {
		t.Fatalf("states = %v, %v", states, err)
	}
	_, before, err := tx.Subscribers(ctx(), app1)
	if err != nil {
		t.Fatal(err)
	}
	off, err := tx.DisableEndpoint(ctx(), ep1, "too many failures", at)
	if err != nil || off == nil || off.AppID != app1 || off.URL != "https://example.com/"+ep1 {
		t.Fatalf("disable = %+v, %v", off, err)
	}
	if again, err := tx.DisableEndpoint(ctx(), ep1, "again", at); err != nil || again != nil {
		t.Fatalf("disabling an inactive endpoint = %+v, %v; want nil", again, err)
	}
	subs, after, err := tx.Subscribers(ctx(), app1)
	if err != nil || len(subs) != 1 || subs[0].EndpointID != ep2 || !slices.Equal(subs[0].Patterns, []string{"*"}) {
		t.Fatalf("subscribers after disabling = %+v, %v", subs, err)
	}
	// Disabling bumps the app's endpoints version, once: engines that
	// cached the list read it again.
	if v, err := tx.EndpointsVersion(ctx(), app1); err != nil || after != before+1 || v != after {
		t.Fatalf("endpoints version %d before disabling, %d and %d (%v) after, want one more", before, after, v, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	ep, err := s.h.Client.Endpoint.Get(ctx(), ep1)
	if err != nil {
		t.Fatal(err)
	}
	if ep.IsActive || ep.FailureCount != 3 || ep.SuccessCount != 1 || ep.ConsecutiveFailures != 1 || ep.DisabledReason == nil {
		t.Fatalf("endpoint = %+v", ep)
	}
}

func testCrashRecovery(t *testing.T, s *suite) {
	handed := s.publish(app1, s.now.Add(-time.Second), &dispatch.Lease{Token: worker, Until: s.now.Add(lease)}, ep1)
	claimed := s.publish(app1, s.now.Add(-time.Second), nil, ep1)
	if len(s.claim(s.d, ep1, s.now, 10, dispatch.Cursor{})) != 1 {
		t.Fatal("claim failed")
	}
	// The process dies; another starts on the same database. Once the
	// leases have expired at the latest, everything unfinished is due.
	s.d.Close()
	d2 := s.h.Open()
	t.Cleanup(func() { d2.Close() })
	jobs := s.claim(d2, ep1, s.now.Add(lease+time.Second), 10, dispatch.Cursor{})
	got := idsOf(jobs)
	slices.Sort(got)
	want := append(slices.Clone(handed), claimed...)
	slices.Sort(want)
	wantIDs(t, "claimed after the crash", got, want)
}

func testSavepoints(t *testing.T, s *suite) {
	tx, err := s.d.Begin(ctx())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck
	insert := func(lease *dispatch.Lease) string {
		ev := &dispatch.EventRow{ID: s.id("evt"), AppID: app1, EventType: "order.created", Payload: []byte(`{}`), CreatedAt: s.now}
		if _, err := tx.InsertEvents(ctx(), []*dispatch.EventRow{ev}); err != nil {
			t.Fatal(err)
		}
		row := dispatch.DeliveryRow{ID: s.id("dlv"), AppID: app1, EventID: ev.ID, EndpointID: ep1, EventType: ev.EventType, CreatedAt: s.now}
		if err := tx.InsertDeliveries(ctx(), []dispatch.DeliveryRow{row}, lease); err != nil {
			t.Fatal(err)
		}
		return row.ID
	}
	kept := insert(nil)
	if err := tx.Savepoint(ctx(), "p"); err != nil {
		t.Fatal(err)
	}
	insert(&dispatch.Lease{Token: worker, Until: s.now.Add(lease)})
	if err := tx.RollbackTo(ctx(), "p"); err != nil {
		t.Fatal(err)
	}
	if err := tx.ReleaseSavepoint(ctx(), "p"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, "claimed", idsOf(s.claim(s.d, ep1, s.now, 10, dispatch.Cursor{})), []string{kept})
}

func testSharedLeases(t *testing.T, s *suite) {
	s.publish(app1, s.now.Add(-time.Second), nil, ep1)
	s.publish(app1, s.now.Add(-time.Second), &dispatch.Lease{Token: worker, Until: s.now.Add(lease)}, ep1)
	d2 := s.h.Open()
	t.Cleanup(func() { d2.Close() })
	a := s.claim(s.d, ep1, s.now, 10, dispatch.Cursor{})
	b := s.claim(d2, ep1, s.now, 10, dispatch.Cursor{})
	if len(a) != 1 || len(b) != 0 {
		t.Fatalf("first driver claimed %d, second %d; want 1 and 0 (the rest is leased)", len(a), len(b))
	}
}

func testSharedExpiry(t *testing.T, s *suite) {
	ids := s.publish(app1, s.now.Add(-time.Second), nil, ep1)
	first := s.claim(s.d, ep1, s.now, 10, dispatch.Cursor{})
	d2 := s.h.Open()
	t.Cleanup(func() { d2.Close() })
	if jobs := s.claim(d2, ep1, s.now.Add(lease/2), 10, dispatch.Cursor{}); len(jobs) != 0 {
		t.Fatalf("claimed under a live lease: %v", idsOf(jobs))
	}
	second := s.claim(d2, ep1, s.now.Add(lease+time.Second), 10, dispatch.Cursor{})
	wantIDs(t, "claimed after expiry", idsOf(second), ids)
	if s.finish(s.d, first[0].Lease, "SUCCEEDED") {
		t.Fatal("the expired lease's result overwrote the new lease's delivery")
	}
	if !s.finish(d2, second[0].Lease, "RETRYING") {
		t.Fatal("the new lease's result was not applied")
	}
	if st := s.status(ids[0]); st != "RETRYING" {
		t.Fatalf("status = %s, want RETRYING", st)
	}
}

func testBacklog(t *testing.T, s *suite) {
	s.publish(app1, s.now.Add(-3*time.Second), nil, ep1)
	second := s.publish(app1, s.now.Add(-2*time.Second), nil, ep1)
	s.publish(app1, s.now.Add(-time.Second), nil, ep2)
	s.publish(app1, s.now.Add(-5*time.Second), &dispatch.Lease{Token: worker, Until: s.now.Add(lease)}, ep2) // handed off
	s.publish(app1, s.now.Add(time.Hour), nil, ep1)                                                          // not due
	backlog := func() dispatch.Backlog {
		t.Helper()
		b, err := s.d.Backlog(ctx(), s.now)
		if err != nil {
			t.Fatalf("backlog: %v", err)
		}
		return b
	}
	if b := backlog(); b.Due != 3 || !b.Oldest.Equal(s.now.Add(-3*time.Second)) {
		t.Fatalf("backlog = %+v, want 3 due, the oldest due at %s", b, s.now.Add(-3*time.Second))
	}
	jobs := s.claim(s.d, ep1, s.now, 1, dispatch.Cursor{}) // the oldest
	if b := backlog(); b.Due != 2 || !b.Oldest.Equal(s.now.Add(-2*time.Second)) {
		t.Fatalf("backlog after claiming the oldest = %+v, want 2 due, the oldest due at %s", b, s.now.Add(-2*time.Second))
	}
	s.finish(s.d, jobs[0].Lease, "SUCCEEDED")
	left := s.claim(s.d, ep1, s.now, 10, dispatch.Cursor{})
	wantIDs(t, "claimed", idsOf(left), second)
	if b := backlog(); b.Due != 1 || !b.Oldest.Equal(s.now.Add(-time.Second)) {
		t.Fatalf("backlog = %+v, want the delivery of ep2 only", b)
	}
}

func testStats(t *testing.T, s *suite) {
	hour := s.now.Truncate(time.Hour)
	row := func(ep string, res time.Duration, ok, retry int64, bin int) dispatch.StatsRow {
		r := dispatch.StatsRow{AppID: app1, EndpointID: ep, Resolution: res, Bucket: hour, AttemptsSucceeded: ok,
			AttemptsRetryable: retry, AttemptsPermanent: 1, DeliveriesSucceeded: ok, DeliveriesFailed: 1, DurationMs: 10 * (ok + retry + 1)}
		r.Latency[bin] = ok + retry + 1
		return r
	}
	for _, batch := range [][]dispatch.StatsRow{
		{row(ep1, time.Hour, 2, 1, 3), row("", time.Hour, 2, 1, 3), row(ep1, time.Minute, 2, 1, 3)},
		{row(ep1, time.Hour, 5, 0, 4)},
	} {
		tx, err := s.d.Begin(ctx())
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.AddStats(ctx(), batch); err != nil {
			t.Fatalf("add stats: %v", err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.h.Client.DeliveryStat.Query().
		Where(deliverystat.AppID(app1), deliverystat.EndpointID(ep1), deliverystat.Resolution(3600), deliverystat.Bucket(hour.Unix())).
		Only(ctx())
	if err != nil {
		t.Fatalf("read the hour bucket: %v", err)
	}
	if got.AttemptsSucceeded != 7 || got.AttemptsRetryable != 1 || got.AttemptsPermanent != 2 || got.DeliveriesSucceeded != 7 ||
		got.DeliveriesFailed != 2 || got.DurationMs != 40+60 || got.Latency03 != 4 || got.Latency04 != 6 {
		t.Fatalf("hour bucket of ep1 = %+v, want the two batches added up", got)
	}
	n, err := s.h.Client.DeliveryStat.Query().Count(ctx())
	if err != nil || n != 3 {
		t.Fatalf("%d stats rows (%v), want 3: endpoint hour, app hour, endpoint minute", n, err)
	}
}

func testTraceParent(t *testing.T, s *suite) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tx, err := s.d.Begin(ctx())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck
	ev := &dispatch.EventRow{ID: s.id("evt"), AppID: app1, EventType: "order.created", Payload: []byte(`{}`), CreatedAt: s.now.Add(-time.Second), TraceParent: tp}
	plain := &dispatch.EventRow{ID: s.id("evt"), AppID: app1, EventType: "order.created", Payload: []byte(`{}`), CreatedAt: s.now.Add(-time.Second)}
	if _, err := tx.InsertEvents(ctx(), []*dispatch.EventRow{ev, plain}); err != nil {
		t.Fatal(err)
	}
	rows := []dispatch.DeliveryRow{
		{ID: s.id("dlv"), AppID: app1, EventID: ev.ID, EndpointID: ep1, EventType: ev.EventType, CreatedAt: ev.CreatedAt},
		{ID: s.id("dlv"), AppID: app1, EventID: plain.ID, EndpointID: ep1, EventType: ev.EventType, CreatedAt: ev.CreatedAt},
	}
	if err := tx.InsertDeliveries(ctx(), rows, nil); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, j := range s.claim(s.d, ep1, s.now, 10, dispatch.Cursor{}) {
		got[j.DeliveryID] = j.TraceParent
	}
	if want := map[string]string{rows[0].ID: tp, rows[1].ID: ""}; !reflect.DeepEqual(got, want) {
		t.Fatalf("claimed trace parents = %v, want %v", got, want)
	}
	stored, err := s.h.Client.Event.Get(ctx(), ev.ID)
	if err != nil || stored.TraceParent == nil || *stored.TraceParent != tp {
		t.Fatalf("stored event = %+v, %v; want trace_parent %s", stored, err, tp)
	}
}
