package dispatch

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// subscriber is an active endpoint and the event types it subscribes to.
type subscriber struct {
	id       string
	patterns []string
}

// subscriptions caches, per app, the active endpoints and their event
// types, so that publishing matches them without a query. The engine drops
// an app's entry whenever one of its endpoints changes (EndpointChanged,
// EndpointDisabled); the TTL bounds staleness from changes made by another
// process.
type subscriptions struct {
	ttl time.Duration

	mu   sync.Mutex
	apps map[string]*appSubscribers
}

type appSubscribers struct {
	subs    []subscriber
	expires time.Time
}

func newSubscriptions(ttl time.Duration) *subscriptions {
	return &subscriptions{ttl: ttl, apps: make(map[string]*appSubscribers)}
}

// querier runs a query: a database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// forApp returns the active endpoints of an app, reading them through q on
// a cache miss.
func (s *subscriptions) forApp(ctx context.Context, q querier, appID string) ([]subscriber, error) {
	now := time.Now()
	s.mu.Lock()
	a := s.apps[appID]
	s.mu.Unlock()
	if a != nil && now.Before(a.expires) {
		return a.subs, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT id, event_types FROM endpoints WHERE app_id = ? AND is_active AND deleted_at IS NULL`, appID)
	if err != nil {
		return nil, fmt.Errorf("load subscribed endpoints: %w", err)
	}
	defer rows.Close()
	var subs []subscriber
	for rows.Next() {
		var sub subscriber
		var types []byte
		if err := rows.Scan(&sub.id, &types); err != nil {
			return nil, fmt.Errorf("load subscribed endpoints: %w", err)
		}
		if err := json.Unmarshal(types, &sub.patterns); err != nil {
			return nil, fmt.Errorf("event types of endpoint %s: %w", sub.id, err)
		}
		subs = append(subs, sub)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load subscribed endpoints: %w", err)
	}
	s.mu.Lock()
	// Only cache if nothing invalidated the app while loading.
	if cur := s.apps[appID]; cur == a {
		s.apps[appID] = &appSubscribers{subs: subs, expires: now.Add(s.ttl)}
	}
	s.mu.Unlock()
	return subs, nil
}

// invalidate drops the cached endpoints of an app, or of every app if
// appID is empty.
func (s *subscriptions) invalidate(appID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if appID == "" {
		clear(s.apps)
		return
	}
	// A tombstone (expired entry) rather than a delete, so a load that
	// started before the change does not cache its stale result.
	s.apps[appID] = &appSubscribers{}
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
