// Package dispatch turns published events into signed HTTP deliveries.
//
// Publishing stores an event and, in the same transaction, one PENDING
// delivery per active endpoint whose subscriptions match its type (see
// Publisher). The Engine then moves deliveries through their states:
//
//	PENDING ──claim──▶ SENDING ──2xx──▶ SUCCEEDED
//	                     │
//	                     ├─ retryable, attempts left ─▶ RETRYING ──due──▶ SENDING
//	                     └─ permanent, or exhausted ──▶ FAILED
//
// Claiming leases a batch of due deliveries to this process (a Claimer; the
// SQLite one serialises claims through the single writer, a PostgreSQL one
// would use FOR UPDATE SKIP LOCKED). While a delivery is SENDING its
// next_attempt_at holds the lease expiry, so if the process dies the
// delivery becomes due again by itself: delivery is at least once.
//
// A fixed pool of workers sends the requests, at most Config.Workers at a
// time and at most Config.PerEndpoint per endpoint. Results are recorded in
// batches: one transaction writes many attempts, delivery updates and
// endpoint counters, so the database commits once per batch instead of once
// per request (group commit) without weakening durability: a delivery is
// acknowledged as sent only once its attempt is committed.
package dispatch
