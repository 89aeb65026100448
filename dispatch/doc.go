// Package dispatch turns published events into signed HTTP deliveries.
//
// Publishing stores an event and, in the same transaction, one PENDING
// delivery per active endpoint whose subscriptions match its type; the
// answer means it is durable. The Engine then moves deliveries through
// their states:
//
//	PENDING ──send──▶ SUCCEEDED (2xx)
//	   │
//	   ├─ retryable, attempts left ─▶ RETRYING ──due──▶ send again
//	   └─ permanent, or exhausted ──▶ FAILED
//
// The engine is made of parts that each own one piece of state, the way
// riverqueue/river separates its producer, completer and driver:
//
//   - the Driver owns every statement and the leases: which engine may send
//     a delivery, until when (driver.go; SQLiteDriver keeps its leases in
//     memory, since one process owns a SQLite file);
//   - the publisher commits concurrent publishes in groups and hands new
//     deliveries, inserted already leased, straight to the scheduler
//     (publisher.go);
//   - the scheduler claims due deliveries per endpoint and feeds a fixed
//     pool of workers, within the engine's limits (scheduler.go, window.go);
//   - the recorder commits attempts in batches and never drops one: a
//     batch the store refuses is kept and tried again (recorder.go);
//   - endpoint configuration is cached and versioned (configs.go); queued
//     deliveries of disabled endpoints are failed in bounded batches
//     (canceller.go); Herald's own webhook.* events are coalesced
//     (meta.go);
//   - what an operator watches goes through small seams: measurements to
//     a Metrics (metrics.go), spans of publishes, attempts and commits to
//     an optional tracer (telemetry.go), and the statistics roll-ups the
//     recorder adds in its transactions (stats.go).
//
// Delivery is at least once: a delivery whose attempt was not recorded
// (the process died, or its lease expired) is sent again, with the same
// webhook-id, so receivers can drop the duplicate.
package dispatch
