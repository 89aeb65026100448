package dispatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/audit"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/secret"
	"github.com/heraldhq/herald/signing"
	"github.com/heraldhq/herald/webhook"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeDriver is an in-memory Driver with injectable faults. Its leases are
// a set, like the SQLite driver's.
type fakeDriver struct {
	mu       sync.Mutex
	due      map[string][]Job // per endpoint, oldest first
	leased   map[string]bool
	claimErr map[string]error
	released []Lease
	claims   int
	owns     []ownCall
	// Recording: finished deliveries, and how many commits fail before
	// one succeeds; poison names deliveries whose Finish always fails.
	finished    map[string]DeliveryUpdate
	attempts    int
	failCommits int
	commits     int
	poison      map[string]bool
}

func newFakeDriver() *fakeDriver {
	return &fakeDriver{due: make(map[string][]Job), leased: make(map[string]bool), claimErr: make(map[string]error),
		finished: make(map[string]DeliveryUpdate), poison: make(map[string]bool)}
}

// appOfEndpoint is the app of the fakes' endpoints: endpoints whose name
// ends in an odd digit belong to app_2, the others to app_1.
func appOfEndpoint(id string) string {
	if c := id[len(id)-1]; c >= '0' && c <= '9' && (c-'0')%2 == 1 {
		return "app_2"
	}
	return "app_1"
}

// add makes n deliveries of an endpoint due.
func (f *fakeDriver) add(endpointID string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		id := fmt.Sprintf("dlv_%s_%04d", endpointID, len(f.due[endpointID]))
		f.due[endpointID] = append(f.due[endpointID], Job{
			Lease: Lease{DeliveryID: id, EndpointID: endpointID}, AppID: appOfEndpoint(endpointID), EventID: "evt_" + id,
			EventType: "order.created", Trigger: "SCHEDULED", Payload: []byte(`{}`),
		})
	}
}

func (f *fakeDriver) Begin(context.Context) (Tx, error) { return &fakeTx{f: f}, nil }

func (f *fakeDriver) Subscribers(context.Context, string) ([]Subscriber, int64, error) {
	return nil, 0, nil
}

func (f *fakeDriver) Due(context.Context, time.Time) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for ep, jobs := range f.due {
		for _, j := range jobs {
			if _, done := f.finished[j.DeliveryID]; !done && !f.leased[j.DeliveryID] {
				ids = append(ids, ep)
				break
			}
		}
	}
	sort.Strings(ids)
	return ids, nil
}

func (f *fakeDriver) Claim(_ context.Context, p ClaimParams) ([]Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.claims++
	if err := f.claimErr[p.EndpointID]; err != nil {
		return nil, err
	}
	var out []Job
	for _, j := range f.due[p.EndpointID] {
		if len(out) == p.Limit {
			break
		}
		if _, done := f.finished[j.DeliveryID]; done || f.leased[j.DeliveryID] {
			continue
		}
		f.leased[j.DeliveryID] = true
		j.Token, j.Until = p.Worker, p.Now.Add(p.Lease)
		out = append(out, j)
	}
	return out, nil
}

func (f *fakeDriver) Release(_ context.Context, leases []Lease, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range leases {
		delete(f.leased, l.DeliveryID)
	}
	f.released = append(f.released, leases...)
	return nil
}

func (f *fakeDriver) Cancel(context.Context, CancelParams) ([]DeliveryRef, error) { return nil, nil }
func (f *fakeDriver) Own(_ context.Context, endpointID, owner string, until, now time.Time) (bool, time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.owns = append(f.owns, ownCall{endpointID: endpointID, owner: owner, until: until, now: now})
	return true, until, nil
}

// ownCall is one call of Own.
type ownCall struct {
	endpointID, owner string
	until, now        time.Time
}

func (f *fakeDriver) RecentAttemptEnds(context.Context, string, time.Time, int) ([]time.Time, error) {
	return nil, nil
}
func (f *fakeDriver) Requeue(context.Context, RequeueParams) (RequeueResult, error) {
	return RequeueResult{}, nil
}
func (f *fakeDriver) Close() error { return nil }
func (f *fakeDriver) Backlog(context.Context, time.Time) (Backlog, error) {
	return Backlog{}, nil
}

func (f *fakeDriver) leasedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.leased)
}

// fakeTx stages its changes and applies them on Commit.
type fakeTx struct {
	f        *fakeDriver
	finished map[string]DeliveryUpdate
	ended    []string
	marks    []int
	order    []string
}

var errSimulated = errors.New("database or disk is full (simulated)")

func (t *fakeTx) Subscribers(context.Context, string) ([]Subscriber, int64, error) {
	return nil, 0, nil
}
func (t *fakeTx) EndpointsVersion(context.Context, string) (int64, error) { return 0, nil }
func (t *fakeTx) InsertEvents(_ context.Context, evs []*EventRow) ([]*EventRow, error) {
	return make([]*EventRow, len(evs)), nil
}
func (t *fakeTx) InsertDeliveries(context.Context, []DeliveryRow, *Lease) error {
	return nil
}
func (t *fakeTx) EndpointStates(_ context.Context, ids []string) (map[string]EndpointState, error) {
	out := make(map[string]EndpointState)
	for _, id := range ids {
		out[id] = EndpointState{Active: true}
	}
	return out, nil
}

func (t *fakeTx) Finish(_ context.Context, cs []Completion) ([]bool, error) {
	applied := make([]bool, len(cs))
	for i, c := range cs {
		l := c.Lease
		t.f.mu.Lock()
		poison := t.f.poison[l.DeliveryID]
		t.f.mu.Unlock()
		if poison {
			return nil, fmt.Errorf("store %s: %w", l.DeliveryID, errSimulated)
		}
		if t.finished == nil {
			t.finished = make(map[string]DeliveryUpdate)
		}
		t.finished[l.DeliveryID] = c.Update
		t.order = append(t.order, l.DeliveryID)
		t.ended = append(t.ended, l.DeliveryID)
		applied[i] = true
	}
	return applied, nil
}

func (t *fakeTx) AddCounters(context.Context, CounterDelta) (int, error) { return 0, nil }
func (t *fakeTx) AddStats(context.Context, []StatsRow) error             { return nil }
func (t *fakeTx) PauseEndpoint(context.Context, string, time.Time) error { return nil }
func (t *fakeTx) InsertAudit(context.Context, []*audit.Row) error        { return nil }
func (t *fakeTx) DisableEndpoint(context.Context, string, string, time.Time) (*DisabledEndpoint, error) {
	return nil, nil
}

func (t *fakeTx) Savepoint(context.Context, string) error {
	t.marks = append(t.marks, len(t.order))
	return nil
}

func (t *fakeTx) RollbackTo(context.Context, string) error {
	m := t.marks[len(t.marks)-1]
	for _, id := range t.order[m:] {
		delete(t.finished, id)
	}
	t.order, t.ended = t.order[:m], t.ended[:min(m, len(t.ended))]
	return nil
}

func (t *fakeTx) ReleaseSavepoint(context.Context, string) error {
	t.marks = t.marks[:len(t.marks)-1]
	return nil
}

func (t *fakeTx) Commit() error {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	t.f.commits++
	if t.f.failCommits > 0 {
		t.f.failCommits--
		return errSimulated
	}
	for id, u := range t.finished {
		if _, done := t.f.finished[id]; done {
			panic("delivery " + id + " finished twice")
		}
		t.f.finished[id] = u
		t.f.attempts++
	}
	for _, id := range t.ended {
		delete(t.f.leased, id)
	}
	return nil
}

func (t *fakeTx) Rollback() error { return nil }

// testEndpoints returns a loader of active endpoints with valid secrets.
func testEndpoints(t *testing.T) func(ctx context.Context, ids []string) ([]*ent.Endpoint, error) {
	secret, err := signing.NewSecret(nil)
	if err != nil {
		t.Fatal(err)
	}
	return func(_ context.Context, ids []string) ([]*ent.Endpoint, error) {
		out := make([]*ent.Endpoint, len(ids))
		for i, id := range ids {
			out[i] = &ent.Endpoint{ID: id, AppID: appOfEndpoint(id), URL: "https://example.com/" + id, IsActive: true, Secret: secret,
				Auth: webhook.Auth{Type: webhook.AuthNone}, RetryPolicy: webhook.DefaultRetryPolicy(), Timeout: time.Second}
		}
		return out, nil
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// prepareNoTarget parses endpoints without a target, for tests that never
// send.
func prepareNoTarget(ep *ent.Endpoint) (*endpointConfig, error) {
	return newEndpointConfig(ep, testKeys, nil, nil, nil)
}

// testKeys opens the endpoints of these tests, whose secrets are stored
// in the clear.
var testKeys = func() *secret.Keyring {
	r, err := secret.NewKeyring(secret.Key{ID: "test", Bytes: make([]byte, secret.KeySize)})
	if err != nil {
		panic(err)
	}
	return r
}()
