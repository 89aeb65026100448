package dispatch

import (
	"sync"
	"time"
)

// subscriptions caches, per app, the active endpoints and their event
// types, so that publishing matches them without a query. The engine drops
// an app's entry whenever one of its endpoints changes. A publish matches
// its events against a snapshot of the list before its transaction, and
// the transaction checks that the snapshot is still current: nothing
// invalidated the app since and, for an engine that shares its database
// with others, the app's endpoints version read in the transaction is
// still the snapshot's, since a change made through another replica
// reaches this one only later; the TTL bounds staleness otherwise.
//
// A read of an app's endpoints is cached (see subsLoad) only if nothing
// invalidated the app while it read: a list read before a change is never
// cached.
type subscriptions struct {
	ttl time.Duration
	now func() time.Time

	mu   sync.Mutex
	gen  uint64 // bumped by every invalidation of all apps
	apps map[string]*appSubscribers
}

type appSubscribers struct {
	subs    []Subscriber
	version int64 // of the app's endpoints, as read with subs
	expires time.Time
	gen     uint64 // bumped by every invalidation of the app
	all     uint64 // the invalidations of all apps when subs were read
}

// subsLoad is an app's subscriber list being read, to be cached once read
// unless the app was invalidated meanwhile.
type subsLoad struct {
	appID string
	// prev is the app's list read before, whose compiled filters are
	// used again where a filter did not change.
	prev      []Subscriber
	subs      []Subscriber
	version   int64
	gen, all  uint64
	startedAt time.Time
}

// snapshot returns what the load read, as of when it began.
func (l *subsLoad) snapshot() subsSnapshot {
	return subsSnapshot{subs: l.subs, version: l.version, gen: l.gen, all: l.all}
}

func newSubscriptions(ttl time.Duration, now func() time.Time) *subscriptions {
	return &subscriptions{ttl: ttl, now: now, apps: make(map[string]*appSubscribers)}
}

// subsSnapshot is an app's subscriber list as a publish matched its events
// against it, with what tells whether it is still the app's.
type subsSnapshot struct {
	subs    []Subscriber
	version int64 // of the app's endpoints, as read with subs
	// gen and all are the app's and every app's invalidation counts when
	// the list was read.
	gen, all uint64
}

// snapshot returns an app's cached subscribers. Otherwise it returns a
// load to fill in (subs, version) from a read and store.
func (s *subscriptions) snapshot(appID string) (subsSnapshot, *subsLoad) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[appID]
	if a != nil && now.Before(a.expires) {
		return subsSnapshot{subs: a.subs, version: a.version, gen: a.gen, all: a.all}, nil
	}
	return subsSnapshot{}, s.loadLocked(appID, a, now)
}

// current reports whether nothing invalidated an app's subscribers since
// snap was read.
func (s *subscriptions) current(appID string, snap subsSnapshot) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != snap.all {
		return false
	}
	var gen uint64
	if a := s.apps[appID]; a != nil {
		gen = a.gen
	}
	return gen == snap.gen
}

func (s *subscriptions) loadLocked(appID string, a *appSubscribers, now time.Time) *subsLoad {
	l := &subsLoad{appID: appID, all: s.gen, startedAt: now}
	if a != nil {
		l.gen, l.prev = a.gen, a.subs
	}
	return l
}

// store caches a committed load unless its app was invalidated since the
// load began.
func (s *subscriptions) store(l *subsLoad) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[l.appID]
	var gen uint64
	if a != nil {
		gen = a.gen
	}
	if gen != l.gen || s.gen != l.all {
		return
	}
	s.apps[l.appID] = &appSubscribers{subs: l.subs, version: l.version, expires: l.startedAt.Add(s.ttl), gen: gen, all: l.all}
}

// invalidate drops the cached endpoints of an app, or of every app if
// appID is empty.
func (s *subscriptions) invalidate(appID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if appID == "" {
		s.gen++
		clear(s.apps)
		return
	}
	// An expired entry with a new generation rather than a delete, so
	// that a load that began before the change does not cache its result.
	// It keeps the list, never served again, for its compiled filters.
	a := s.apps[appID]
	var gen uint64
	var subs []Subscriber
	if a != nil {
		gen, subs = a.gen, a.subs
	}
	s.apps[appID] = &appSubscribers{gen: gen + 1, subs: subs}
}

// onceErr runs a function successfully at most once, retrying after
// failures.
type onceErr struct {
	mu   sync.Mutex
	done bool
}

func (o *onceErr) do(f func() error) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done {
		return nil
	}
	if err := f(); err != nil {
		return err
	}
	o.done = true
	return nil
}
