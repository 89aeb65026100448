// Package pgnotify carries small messages between Herald replicas that
// share a PostgreSQL database, over LISTEN/NOTIFY: wake-ups (deliveries
// were published or requeued), cache invalidations, and the live feeds'
// relay. No broker: PostgreSQL is already there.
//
// A Sender batches. At thousands of deliveries per second, one NOTIFY per
// change would swamp PostgreSQL's notification queue and its commits, so
// Send only queues; one goroutine sends everything that queued up while its
// previous statement ran in a single statement, packing each channel's
// messages into notifications under PostgreSQL's 8,000-byte payload limit.
// SendTx sends within a caller's transaction instead, for messages that
// must go out exactly when rows commit.
//
// A Listener holds one native connection (not from the pool: LISTEN is
// per session) listening on Herald's channels. It reconnects with backoff
// when the connection breaks, and then tells every Handler that messages
// may have been missed (HandleReset), so that caches are dropped and work
// is looked for again: notifications are wake-up calls, never the only
// record of anything.
//
// Every notification carries its sender's replica ID, so a process ignores
// its own, and a number per sender and channel, so that listeners notice
// a notification that went missing.
package pgnotify
