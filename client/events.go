package client

import (
	"context"
	"time"
)

// Viewer is the caller: its API key and the app it acts in.
type Viewer struct {
	AppID   string
	AppName string
	KeyID   string
	KeyName string
	// KeyPrefix is the first characters of the key, safe to show.
	KeyPrefix string
	// Scopes restrict the key; nil: full access.
	Scopes    []APIKeyScope
	ExpiresAt *time.Time
	IsAdmin   bool
}

// Viewer returns the caller. It is the cheapest way to check that the URL
// and key work.
func (c *Client) Viewer(ctx context.Context) (*Viewer, error) {
	r, err := viewer(ctx, c.gql)
	if err != nil {
		return nil, err
	}
	v := r.Viewer
	return &Viewer{
		AppID: v.App.ID, AppName: v.App.Name,
		KeyID: v.ApiKey.ID, KeyName: v.ApiKey.Name, KeyPrefix: v.ApiKey.Prefix,
		Scopes: v.ApiKey.Scopes, ExpiresAt: v.ApiKey.ExpiresAt, IsAdmin: v.IsAdmin,
	}, nil
}

// Publish publishes an event to every active endpoint subscribed to its
// type. Publishing again with the same IdempotencyKey returns the original
// event and sends nothing new.
func (c *Client) Publish(ctx context.Context, in PublishEventInput) (*Event, error) {
	r, err := publishEvent(ctx, c.gql, &in)
	if err != nil {
		return nil, err
	}
	return &r.PublishEvent, nil
}

// MaxPublishBatch is the most events PublishMany takes at once.
const MaxPublishBatch = 100

// PublishMany publishes up to MaxPublishBatch events in one transaction:
// all of them are stored, or none.
func (c *Client) PublishMany(ctx context.Context, in []PublishEventInput) ([]Event, error) {
	r, err := publishEvents(ctx, c.gql, in)
	if err != nil {
		return nil, err
	}
	return r.PublishEvents, nil
}

// Event returns an event by ID.
func (c *Client) Event(ctx context.Context, id string) (*Event, error) {
	r, err := getEvent(ctx, c.gql, id)
	if err != nil {
		return nil, err
	}
	if len(r.Events.Edges) == 0 || r.Events.Edges[0].Node == nil {
		return nil, notFound("event", id)
	}
	return r.Events.Edges[0].Node, nil
}

// EventQuery selects events, newest first. Zero fields do not filter.
type EventQuery struct {
	// First is the page size (default 20, at most 100).
	First int
	// After is the cursor to continue from (Page.EndCursor).
	After string
	// EventType is an exact type, or a prefix pattern such as "order.*".
	EventType string
	// Since and Until bound the events' creation time (Since inclusive).
	Since, Until time.Time
}

// Page is one page of a list.
type Page[T any] struct {
	Items []T `json:"items"`
	// TotalCount counts every item the query matches, on all pages.
	TotalCount int `json:"totalCount"`
	// HasNextPage says whether another page follows; EndCursor continues.
	HasNextPage bool   `json:"hasNextPage"`
	EndCursor   string `json:"endCursor,omitempty"`
}

func pageSize(n int) int {
	switch {
	case n <= 0:
		return 20
	case n > 100:
		return 100
	}
	return n
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// typePattern splits an event type filter into an exact type or a prefix
// ("order.*" → "order."); "*" matches everything.
func typePattern(s string) (exact, prefix *string) {
	switch {
	case s == "" || s == "*":
		return nil, nil
	case len(s) > 1 && s[len(s)-1] == '*':
		p := s[:len(s)-1]
		return nil, &p
	}
	return &s, nil
}

func endCursor(p PageInfo) string {
	if p.EndCursor == nil {
		return ""
	}
	return *p.EndCursor
}

// Events lists events, newest first.
func (c *Client) Events(ctx context.Context, q EventQuery) (*Page[Event], error) {
	exact, prefix := typePattern(q.EventType)
	r, err := listEvents(ctx, c.gql, pageSize(q.First), optString(q.After), exact, prefix, optTime(q.Since), optTime(q.Until))
	if err != nil {
		return nil, err
	}
	p := &Page[Event]{TotalCount: r.Events.TotalCount, HasNextPage: r.Events.PageInfo.HasNextPage, EndCursor: endCursor(r.Events.PageInfo)}
	for _, e := range r.Events.Edges {
		if e != nil && e.Node != nil {
			p.Items = append(p.Items, *e.Node)
		}
	}
	return p, nil
}

// EventType returns a type of the app's catalog by name.
func (c *Client) EventType(ctx context.Context, name string) (*EventType, error) {
	r, err := getEventType(ctx, c.gql, name)
	if err != nil {
		return nil, err
	}
	if len(r.EventTypes.Edges) == 0 || r.EventTypes.Edges[0].Node == nil {
		return nil, &Error{Code: CodeNotFound, Message: "event type " + name + " is not in the app's catalog"}
	}
	return r.EventTypes.Edges[0].Node, nil
}

// EventTypes lists the app's catalog by name.
func (c *Client) EventTypes(ctx context.Context, first int, after string) (*Page[EventType], error) {
	r, err := listEventTypes(ctx, c.gql, pageSize(first), optString(after))
	if err != nil {
		return nil, err
	}
	p := &Page[EventType]{TotalCount: r.EventTypes.TotalCount, HasNextPage: r.EventTypes.PageInfo.HasNextPage, EndCursor: endCursor(r.EventTypes.PageInfo)}
	for _, e := range r.EventTypes.Edges {
		if e != nil && e.Node != nil {
			p.Items = append(p.Items, *e.Node)
		}
	}
	return p, nil
}

// CreateEventType adds a type to the app's catalog, with an optional
// description, example payload and JSON Schema that published payloads
// must satisfy.
func (c *Client) CreateEventType(ctx context.Context, in CreateEventTypeInput) (*EventType, error) {
	r, err := createEventType(ctx, c.gql, &in)
	if err != nil {
		return nil, err
	}
	return &r.CreateEventType, nil
}

// ArchiveEventType archives a type of the catalog (by ID): it can no
// longer be published. Herald's system types cannot be archived.
func (c *Client) ArchiveEventType(ctx context.Context, id string) (*EventType, error) {
	r, err := archiveEventType(ctx, c.gql, id)
	if err != nil {
		return nil, err
	}
	return &r.ArchiveEventType, nil
}

// UnarchiveEventType brings an archived type back.
func (c *Client) UnarchiveEventType(ctx context.Context, id string) (*EventType, error) {
	r, err := unarchiveEventType(ctx, c.gql, id)
	if err != nil {
		return nil, err
	}
	return &r.UnarchiveEventType, nil
}
