package dispatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/heraldhq/herald/audit"
	"github.com/heraldhq/herald/filter"
)

// Driver is the storage engine behind an Engine. It owns every statement
// the engine runs against the database: publishing events and deliveries,
// finding and claiming due deliveries, recording attempts, releasing,
// cancelling and requeueing deliveries. The engine decides what happens to
// a delivery; the driver stores it, and owns the leases that keep two
// workers from sending one delivery at once.
//
// A lease is how a driver knows that a delivery is being handled. Drivers
// for a database shared by several processes (PostgreSQL) write the lease
// into the row; the SQLite driver, whose database one process owns, keeps
// its leases in memory. Either way the rules are the same, and the
// conformance suite in package drivertest checks them for every driver:
//
//   - A claim never returns a delivery that is leased and whose lease has
//     not expired, and leases what it returns.
//   - Deliveries inserted with a lease are leased from the moment they are
//     visible to claims.
//   - A result is applied to a delivery only while the lease that produced
//     it is the delivery's current lease (results are fenced).
//   - Cancel and Requeue never touch a delivery under a live lease.
type Driver interface {
	// Begin starts a write transaction.
	Begin(ctx context.Context) (Tx, error)
	// Subscribers reads an app's active endpoints with their event type
	// patterns, and the version of the app's endpoints they are, outside
	// any write transaction (as Tx.Subscribers does within one).
	Subscribers(ctx context.Context, appID string) ([]Subscriber, int64, error)
	// Due returns the endpoints that have deliveries due at now.
	Due(ctx context.Context, now time.Time) ([]string, error)
	// Claim leases up to p.Limit due deliveries of one endpoint to
	// p.Worker, oldest due first.
	Claim(ctx context.Context, p ClaimParams) ([]Job, error)
	// Release ends leases of deliveries that were not attempted: they are
	// due again at now.
	Release(ctx context.Context, leases []Lease, now time.Time) error
	// Cancel ends up to p.Limit unfinished, unleased deliveries of an
	// endpoint FAILED with a reason, without an attempt, and returns them.
	// Fewer than p.Limit means none are left.
	Cancel(ctx context.Context, p CancelParams) ([]DeliveryRef, error)
	// Requeue makes deliveries due at p.Now for a manual attempt (trigger
	// MANUAL_RETRY). Deliveries under a live lease are skipped and
	// counted in RequeueResult.Leased.
	Requeue(ctx context.Context, p RequeueParams) (RequeueResult, error)
	// Backlog counts the deliveries due at now that no live lease holds,
	// and finds the oldest due time among them, for the operator's
	// metrics. It runs every few seconds at most and must read an index,
	// not the deliveries.
	Backlog(ctx context.Context, now time.Time) (Backlog, error)
	// Own makes owner the only engine that sends to an endpoint until
	// until, unless another engine owns it at now; it reports whether
	// owner owns it, and until when the current owner does. Rate limits
	// and ordering hold across replicas because one engine at a time
	// sends to such an endpoint. A driver whose engine is alone (SQLite)
	// always grants it.
	Own(ctx context.Context, endpointID, owner string, until, now time.Time) (owned bool, ownerUntil time.Time, err error)
	// RecentAttemptEnds returns when the latest n recorded attempts of an
	// endpoint that ended after since ended, oldest first, so that a rate
	// limit counts what an earlier run or another replica sent.
	RecentAttemptEnds(ctx context.Context, endpointID string, since time.Time, n int) ([]time.Time, error)
	// Close releases the driver's resources (prepared statements); the
	// database itself belongs to the caller.
	Close() error
}

// Tx is a write transaction of a Driver. It is used by one goroutine.
type Tx interface {
	// Subscribers returns an app's active endpoints with their event type
	// patterns, and the version of the app's endpoints they are (see
	// EndpointsVersion).
	Subscribers(ctx context.Context, appID string) ([]Subscriber, int64, error)
	// EndpointsVersion returns the version of an app's endpoints, which
	// every change of them bumps in its transaction (MarkEndpointsChanged,
	// DisableEndpoint), so that an engine sharing the database with others
	// can tell with one read whether its cached subscribers are current.
	EndpointsVersion(ctx context.Context, appID string) (int64, error)
	// InsertEvents stores events. For an event whose idempotency key is
	// already used in its app (by a stored event, or an earlier one of the
	// same call), nothing is stored and existing holds the stored event at
	// its index; otherwise existing holds nil there.
	InsertEvents(ctx context.Context, evs []*EventRow) (existing []*EventRow, err error)
	// InsertDeliveries stores new PENDING deliveries, due at once. With a
	// lease, they are leased to its worker until lease.Until (hand-offs:
	// the publisher sends them without claiming them).
	InsertDeliveries(ctx context.Context, rows []DeliveryRow, lease *Lease) error
	// EndpointStates reads whether endpoints are active and whether they
	// are deleted. Unknown endpoints are missing from the map.
	EndpointStates(ctx context.Context, ids []string) (map[string]EndpointState, error)
	// Finish records the ends of leased attempts: for each completion it
	// stores the attempt (if any) and, if the lease is still the
	// delivery's lease and the delivery is unfinished, applies the update
	// to it. applied reports, per completion, whether its update was
	// applied. Committing ends the leases either way.
	Finish(ctx context.Context, cs []Completion) (applied []bool, err error)
	// AddCounters adds a batch's outcomes to an endpoint's counters and
	// returns its consecutive failures afterwards.
	AddCounters(ctx context.Context, c CounterDelta) (consecutive int, err error)
	// DisableEndpoint makes an active endpoint inactive with a reason, and
	// bumps its app's endpoints version. It returns nil if the endpoint
	// was not active.
	DisableEndpoint(ctx context.Context, id, reason string, now time.Time) (*DisabledEndpoint, error)
	// AddStats adds rows to the statistics roll-ups: each row's counts
	// and histogram are added to the stored bucket of the same app,
	// endpoint, resolution and start, which is created if missing
	// (an upsert; concurrent transactions of several replicas add up).
	AddStats(ctx context.Context, rows []StatsRow) error
	// InsertAudit stores audit records of the API's mutations (package
	// audit) in the transaction of the change they describe.
	InsertAudit(ctx context.Context, rows []*audit.Row) error
	// PauseEndpoint records that an endpoint asked to be left alone until
	// a time (Retry-After), unless it is paused longer already.
	PauseEndpoint(ctx context.Context, id string, until time.Time) error
	// Savepoint, RollbackTo and ReleaseSavepoint isolate part of the
	// transaction, so that one failing publish or result does not fail
	// the others.
	Savepoint(ctx context.Context, name string) error
	RollbackTo(ctx context.Context, name string) error
	ReleaseSavepoint(ctx context.Context, name string) error
	// Commit commits the transaction; Rollback abandons it (a no-op after
	// Commit).
	Commit() error
	Rollback() error
}

// Lease is a delivery's claim by one worker of one engine.
type Lease struct {
	DeliveryID string
	EndpointID string
	// Token identifies the claim. Results are applied only while the
	// delivery's lease has this token.
	Token string
	// Until is when the lease expires and the delivery is due again.
	Until time.Time
}

// Job is a claimed delivery with what it takes to send it.
type Job struct {
	Lease
	AppID        string
	EventID      string
	EventType    string
	AttemptCount int
	// Trigger is why the next attempt happens: SCHEDULED or MANUAL_RETRY.
	Trigger string
	// Position is where the delivery stands in its endpoint's due order;
	// a claim that starts after it does not read it again.
	Position Cursor
	// Payload and EventCreatedAt are the event's, so the job can be sent
	// without reading the event again.
	Payload        []byte
	EventCreatedAt time.Time
	// EventDeliverAt is the event's deliverAt (nil: sent at once), from
	// which its deliveries are due.
	EventDeliverAt *time.Time
	// TraceParent is the event's stored W3C traceparent: the trace of the
	// publish, which the delivery's attempt spans link to ("" if none).
	TraceParent string
	// EventTest reports a test event, whose envelope says so.
	EventTest bool
	// OrderingKey is the event's ordering key ("" if none), which brokers
	// use as the message's key, group or ordering key.
	OrderingKey string
}

// Cursor is a position in one endpoint's due order: by due time, then by
// Seq, an order the driver chooses among deliveries due at the same
// instant (every delivery of one published batch is). The zero Cursor is
// before every delivery.
type Cursor struct {
	Due time.Time
	Seq int64
}

func (c Cursor) compare(o Cursor) int {
	if n := c.Due.Compare(o.Due); n != 0 {
		return n
	}
	return cmp.Compare(c.Seq, o.Seq)
}

// orderedWindow is how many of an ordered endpoint's oldest due
// deliveries a claim of n looks through before it looks for the head of
// every ordering key instead: enough that a backlog of many keys is
// claimed in one cheap read, few enough that deliveries held back behind
// their key's head cost a bounded read.
func orderedWindow(n int) int { return max(256, 4*n) }

// ClaimParams says what to claim.
type ClaimParams struct {
	// Worker identifies the claiming engine; drivers derive lease tokens
	// from it.
	Worker     string
	EndpointID string
	Now        time.Time
	// Lease is how long the claim lasts.
	Lease time.Duration
	Limit int
	// After is a hint: the deliveries up to it were claimed by earlier
	// calls, so the driver may start reading past it.
	After Cursor
	// Ordered claims only deliveries that no older unfinished delivery
	// of the same ordering key holds back (the endpoint's ordering is KEY
	// or STRICT).
	Ordered bool
	// Owned claims only while Worker owns the endpoint (see Driver.Own),
	// as the store decides at the claim: an engine that lost the
	// endpoint to another, whatever its clock says, takes nothing.
	Owned bool
}

// CancelParams says which deliveries to cancel.
type CancelParams struct {
	EndpointID string
	Reason     string
	Limit      int
	Now        time.Time
}

// RequeueParams selects deliveries to queue again: either DeliveryIDs, or
// the deliveries of EndpointID created at or after Since (a replay, in
// pages of Limit starting at After). AppID scopes every statement to one
// app.
type RequeueParams struct {
	AppID       string
	DeliveryIDs []string
	EndpointID  string
	Since       time.Time
	// Statuses the deliveries must have.
	Statuses []string
	Limit    int
	// After is where the page starts: a RequeueResult.Next ("" for the
	// first page).
	After string
	Now   time.Time
	// Audit, if set, is the audit record of the mutation that asks: it is
	// stored in the transaction that requeues, if anything is requeued.
	Audit *audit.Row
}

// RequeueResult says what a Requeue did.
type RequeueResult struct {
	// Requeued are the deliveries queued again.
	Requeued []DeliveryRef
	// Leased counts matching deliveries skipped because they are being
	// sent.
	Leased int
	// Next is where the next page starts; More reports that the page was
	// full, so there may be one.
	Next string
	More bool
	// Audited reports that RequeueParams.Audit was stored.
	Audited bool
}

// DeliveryRef names a delivery in reports of bulk changes.
type DeliveryRef struct {
	ID         string
	AppID      string
	EventID    string
	EndpointID string
	EventType  string
	// Status is the delivery's status after the change.
	Status string
}

// Subscriber is an active endpoint and the event types it subscribes to.
type Subscriber struct {
	EndpointID string
	Patterns   []string
	// Ordering is the endpoint's; Filter its payload filter, as stored
	// (nil: none).
	Ordering string
	Filter   []byte
	// Controlled reports that the endpoint's flow is controlled (a rate
	// limit or ordering): its deliveries are never handed off, so that
	// the one engine that sends to it claims them.
	Controlled bool

	// match is Filter compiled by the engine (nil: every event).
	match *filter.Filter
	// broken reports a stored filter that does not compile: nothing
	// matches it.
	broken bool
}

// EventRow is an event as stored.
type EventRow struct {
	ID             string
	AppID          string
	EventType      string
	Payload        []byte
	IdempotencyKey string // "" if none
	OrderingKey    string // "" if none
	// DeliverAt is when its deliveries are due (nil: at once).
	DeliverAt     *time.Time
	DeliveryCount int
	// Test marks a test event (testEndpoint), whose envelope says so.
	Test      bool
	CreatedAt time.Time
	// TraceParent is the W3C traceparent of the publish span when
	// tracing is on ("" stores nothing).
	TraceParent string
}

// DeliveryRow is a new delivery.
type DeliveryRow struct {
	ID         string
	AppID      string
	EventID    string
	EndpointID string
	EventType  string
	CreatedAt  time.Time
	// DueAt is when it is due (zero: CreatedAt).
	DueAt time.Time
	// OrderingKey orders it among its endpoint's deliveries: nil when the
	// endpoint does not order, "" for strict ordering, the event's key
	// for ordering by key.
	OrderingKey *string
	// Failed, if not empty, stores the delivery FAILED at once, without an
	// attempt, with this reason as its error (the endpoint's filter could
	// not be evaluated on the event, say). Such a row has no lease.
	Failed string
	// Trigger is why its first attempt happens: "" (SCHEDULED) or TEST.
	Trigger string
}

// Statements that mark the rare rows the hot inserts leave plain, in the
// transaction that inserts them.
const (
	markTestEvent    = `UPDATE events SET test = true WHERE id = `
	markTestDelivery = `UPDATE deliveries SET next_trigger = 'TEST' WHERE id = `
	sqliteParam      = "?"
	postgresParam    = "$1"
)

// markRare runs exec for the test events among evs that were stored
// (existing[i] nil) and the TEST deliveries among rows; param is the
// dialect's first placeholder.
func markRare(ctx context.Context, exec func(ctx context.Context, sql string, id string) error, param string, evs []*EventRow, existing []*EventRow, rows []DeliveryRow) error {
	for i, ev := range evs {
		if ev.Test && (existing == nil || existing[i] == nil) {
			if err := exec(ctx, markTestEvent+param, ev.ID); err != nil {
				return fmt.Errorf("mark test event %s: %w", ev.ID, err)
			}
		}
	}
	for _, r := range rows {
		if r.Trigger == "TEST" {
			if err := exec(ctx, markTestDelivery+param, r.ID); err != nil {
				return fmt.Errorf("mark test delivery %s: %w", r.ID, err)
			}
		}
	}
	return nil
}

// splitFailed separates the rows to store FAILED from the others.
func splitFailed(rows []DeliveryRow) (pending, failed []DeliveryRow) {
	for i, r := range rows {
		if r.Failed != "" {
			pending = append(pending, rows[:i]...)
			for _, r := range rows[i:] {
				if r.Failed != "" {
					failed = append(failed, r)
				} else {
					pending = append(pending, r)
				}
			}
			return pending, failed
		}
	}
	return rows, nil
}

// due returns when the delivery is due.
func (r DeliveryRow) due() time.Time {
	if r.DueAt.IsZero() {
		return r.CreatedAt
	}
	return r.DueAt
}

// EndpointState is what recording needs to know of an endpoint.
type EndpointState struct {
	Active  bool
	Deleted bool
}

// AttemptRow is an attempt as stored.
type AttemptRow struct {
	ID              string
	AppID           string
	DeliveryID      string
	EndpointID      string
	Number          int
	Trigger         string
	Succeeded       bool
	RequestURL      string
	RequestHeaders  []byte // JSON
	ResponseStatus  int    // 0: none
	ResponseHeaders []byte // JSON
	ResponseBody    string
	Truncated       bool
	DurationMs      int64
	Error           string
	StartedAt       time.Time
	CompletedAt     time.Time
}

// Completion is the end of one leased attempt (or of a lease cancelled
// without an attempt), to record.
type Completion struct {
	Lease Lease
	// Attempt is the attempt to store, nil for a cancellation.
	Attempt *AttemptRow
	Update  DeliveryUpdate
}

// DeliveryUpdate is a delivery's state after an attempt or a cancellation.
type DeliveryUpdate struct {
	Status       string // SUCCEEDED, RETRYING or FAILED
	AttemptCount int
	// NextAttemptAt is when a RETRYING delivery is due (nil otherwise).
	NextAttemptAt *time.Time
	// LastAttemptAt and LastResponseStatus keep their stored value when
	// nil / 0.
	LastAttemptAt      *time.Time
	LastResponseStatus int
	LastError          string // "" clears it
	CompletedAt        *time.Time
	UpdatedAt          time.Time
}

// CounterDelta is a batch's effect on one endpoint's counters.
type CounterDelta struct {
	EndpointID  string
	Successes   int
	Failures    int
	LastSuccess *time.Time
	LastFailure *time.Time
	// Reset restarts consecutive failures (a delivery succeeded) before
	// adding Consecutive.
	Reset       bool
	Consecutive int
}

// Backlog is what waits to be sent (Driver.Backlog).
type Backlog struct {
	// Due counts deliveries whose next attempt is due and that nobody is
	// sending.
	Due int
	// Oldest is the earliest due time among them (zero if Due is 0).
	Oldest time.Time
}

// DisabledEndpoint is an endpoint a transaction disabled.
type DisabledEndpoint struct {
	ID    string
	AppID string
	URL   string
}

// ErrLeased is returned when an operation needs a delivery that is being
// sent.
var ErrLeased = errors.New("dispatch: delivery is leased")
