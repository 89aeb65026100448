package client

import (
	"context"
	"time"
)

// PortalSession is a link to the customer portal for one of the
// platform's customers.
type PortalSession struct {
	// URL opens the portal; the token is in its fragment, which browsers
	// never send to a server.
	URL string
	// Token is the session's token, also in URL.
	Token     string
	ExpiresAt time.Time
	ReadOnly  bool
	// ID is the session's key record: RevokePortalSession takes it.
	ID string
}

// CreatePortalSession opens the customer portal: it returns a link with a
// scoped, expiring token.
func (c *Client) CreatePortalSession(ctx context.Context, in CreatePortalSessionInput) (*PortalSession, error) {
	// The app is an argument of its own; input.appId is deprecated.
	app := in.AppId
	in.AppId = nil
	r, err := createPortalSession(ctx, c.gql, app, &in)
	if err != nil {
		return nil, err
	}
	s := r.CreatePortalSession
	return &PortalSession{URL: s.URL, Token: s.Token, ExpiresAt: s.ExpiresAt, ReadOnly: s.ReadOnly, ID: s.ApiKey.ID}, nil
}

// RevokePortalSession ends a portal session at once, closing its live
// connections.
func (c *Client) RevokePortalSession(ctx context.Context, id string) error {
	_, err := revokePortalSession(ctx, c.gql, id)
	return err
}

// RevokePortalSessions ends every working portal session of an app (the
// key's own app when appID is empty; another one needs an admin key) and
// returns how many it ended.
func (c *Client) RevokePortalSessions(ctx context.Context, appID string) (int, error) {
	r, err := revokePortalSessions(ctx, c.gql, optString(appID))
	if err != nil {
		return 0, err
	}
	return r.RevokePortalSessions.Count, nil
}
