package server_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/server"
)

// newKey creates an API key of the default app and returns its token and ID.
func newKey(t *testing.T, s *heraldtest.Server, name string) (token, id string) {
	t.Helper()
	var out struct {
		CreateAPIKey struct {
			Token  string
			APIKey struct{ ID string }
		}
	}
	s.Do(s.Token, `mutation($n: String!) { createAPIKey(input: {name: $n}) { token apiKey { id } } }`,
		map[string]any{"n": name}).Decode(t, &out)
	return out.CreateAPIKey.Token, out.CreateAPIKey.APIKey.ID
}

func revoke(t *testing.T, s *heraldtest.Server, id string) {
	t.Helper()
	s.Do(s.Token, `mutation($id: ID!) { revokeAPIKey(id: $id) { id revokedAt } }`, map[string]any{"id": id}).Decode(t, nil)
}

func TestWebsocket_RevokingAKeyClosesItsConnectionsAtOnce(t *testing.T) {
	t.Parallel()
	for _, proto := range protocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := heraldtest.Start(t)
			token, id := newKey(t, s, "console")
			subscribed := dial(t, s, proto, token)
			if err := subscribed.Subscribe("1", deliverySubscription, nil); err != nil {
				t.Fatal(err)
			}
			waitSubscribed(t, s, 1)
			idle := dial(t, s, proto, token)
			other := dial(t, s, proto, s.Token) // another key's connection

			revoke(t, s, id)
			for name, c := range map[string]*heraldtest.WS{"with a subscription": subscribed, "idle": idle} {
				code, reason, ok := c.WaitClosed(2 * time.Second)
				if !ok || code != server.CloseUnauthorized || reason == "" {
					t.Errorf("connection %s: closed=%v with %d %q, want %d with a reason within 2s of the revocation",
						name, ok, code, reason, server.CloseUnauthorized)
				}
			}
			if !heraldtest.Eventually(5*time.Second, func() bool { _, subs := s.LiveStats(); return subs == 0 }) {
				t.Error("the revoked key's subscription is still running")
			}
			// The other key's connection is untouched and still works.
			if err := other.Subscribe("2", `query { viewer { app { id } } }`, nil); err != nil {
				t.Fatal(err)
			}
			if r := other.Next(t, "2", 5*time.Second); len(r.Errors) > 0 || r.Data == nil {
				t.Fatalf("query on another key's connection after the revocation: %+v", r)
			}
			// The revoked key cannot open a new connection either.
			c, _, err := s.DialWS(proto, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Init(bearer(token)); err == nil {
				t.Fatal("connection_init with a revoked key accepted")
			}
		})
	}
}

// TestWebsocket_OperationsOfARevokedKeyAreRefused revokes a key the way
// another Herald process sharing the database would, without telling this
// one: with the periodic check of live connections far off, the
// connection stays open, but once the key cache has expired (5 s) every
// operation on it checks the key again and is refused.
func TestWebsocket_OperationsOfARevokedKeyAreRefused(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *server.Config) { c.RecheckInterval = time.Hour })
	token, id := newKey(t, s, "console")
	c := dial(t, s, heraldtest.TransportWS, token)
	if err := c.Subscribe("before", `query { viewer { app { id } } }`, nil); err != nil {
		t.Fatal(err)
	}
	if r := c.Next(t, "before", 5*time.Second); len(r.Errors) > 0 {
		t.Fatalf("query before the revocation: %+v", r)
	}

	other, err := sql.Open("sqlite3", "file:"+s.DBPath+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ExecContext(context.Background(), `UPDATE api_keys SET revoked_at = ? WHERE id = ?`, time.Now().UTC(), id); err != nil {
		t.Fatalf("revoke in the database: %v", err)
	}

	ops := []struct{ name, query string }{
		{"query", `query { viewer { app { id } } }`},
		{"mutation", `mutation { createEventType(input: {name: "revoked.key"}) { id } }`},
		{"subscription", `subscription { eventPublished { eventId } }`},
	}
	n := 0
	var last heraldtest.Result
	refused := heraldtest.Eventually(10*time.Second, func() bool {
		n++
		opID := fmt.Sprintf("probe%d", n)
		if err := c.Subscribe(opID, ops[0].query, nil); err != nil {
			t.Fatal(err)
		}
		last = c.Next(t, opID, 5*time.Second)
		return len(last.Errors) > 0
	})
	if !refused {
		t.Fatalf("queries on the connection of a revoked key still succeed 10s later: data %s, errors %+v", last.Data, last.Errors)
	}
	for _, op := range ops {
		if err := c.Subscribe(op.name, op.query, nil); err != nil {
			t.Fatal(err)
		}
		r := c.Next(t, op.name, 5*time.Second)
		if len(r.Errors) == 0 || r.Errors[0].Extensions["code"] != "UNAUTHENTICATED" {
			t.Errorf("%s on the connection of a revoked key: %+v, want an UNAUTHENTICATED error", op.name, r)
		}
	}
}

// TestWebsocket_ConnectionOfAKeyRevokedUnseenIsClosed is a revocation whose
// notice never arrived (another replica crashed before sending it, or its
// listener was reconnecting): the periodic check of live connections reads
// the key again and closes the connection, subscriptions and all, with
// 4401, within its interval.
func TestWebsocket_ConnectionOfAKeyRevokedUnseenIsClosed(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *server.Config) { c.RecheckInterval = 500 * time.Millisecond })
	token, id := newKey(t, s, "console")
	c := dial(t, s, heraldtest.TransportWS, token)
	if err := c.Subscribe("feed", `subscription { eventPublished { eventId } }`, nil); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite3", "file:"+s.DBPath+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ExecContext(context.Background(), `UPDATE api_keys SET revoked_at = ? WHERE id = ?`, time.Now().UTC(), id); err != nil {
		t.Fatalf("revoke in the database: %v", err)
	}
	code, reason, closed := c.WaitClosed(10 * time.Second)
	if !closed || code != server.CloseUnauthorized {
		t.Fatalf("connection of a key revoked behind this server's back: closed %v with %d %q; want closed with %d", closed, code, reason, server.CloseUnauthorized)
	}
}
