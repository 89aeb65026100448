package dispatch

import (
	"sync"
	"time"
)

// subscriptions caches, per app, the active endpoints and their event
// types, so that publishing matches them without a query. The engine drops
// an app's entry whenever one of its endpoints changes. An engine that
// shares its database with others also checks, in each publishing
// transaction, that the app's endpoints version is still the one it
// cached, since a change made through another replica reaches it only
// later; the TTL bounds staleness otherwise.
//
// A transaction that reads an app's endpoints caches them only once it has
// committed (see subsLoad), and only if nothing invalidated the app while
// it read: a list read inside a transaction that rolled back, or read
// before a change, is never cached.
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
}

// subsLoad is an app's subscriber list read in a transaction, to be cached
// when it commits.
type subsLoad struct {
	appID     string
	subs      []Subscriber
	version   int64
	gen, all  uint64
	startedAt time.Time
}

func newSubscriptions(ttl time.Duration, now func() time.Time) *subscriptions {
	return &subscriptions{ttl: ttl, now: now, apps: make(map[string]*appSubscribers)}
}

// cached returns an app's cached subscribers and the endpoints version
// they are. Otherwise it returns a load to fill in (subs, version) and
// store after the reading transaction commits.
func (s *subscriptions) cached(appID string) ([]Subscriber, int64, *subsLoad) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[appID]
	if a != nil && now.Before(a.expires) {
		return a.subs, a.version, nil
	}
	return nil, 0, s.loadLocked(appID, a, now)
}

// reload returns a load of an app whose cached subscribers turned out to
// be stale.
func (s *subscriptions) reload(appID string) *subsLoad {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loadLocked(appID, s.apps[appID], now)
}

func (s *subscriptions) loadLocked(appID string, a *appSubscribers, now time.Time) *subsLoad {
	l := &subsLoad{appID: appID, all: s.gen, startedAt: now}
	if a != nil {
		l.gen = a.gen
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
	s.apps[l.appID] = &appSubscribers{subs: l.subs, version: l.version, expires: l.startedAt.Add(s.ttl), gen: gen}
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
	a := s.apps[appID]
	var gen uint64
	if a != nil {
		gen = a.gen
	}
	s.apps[appID] = &appSubscribers{gen: gen + 1}
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
