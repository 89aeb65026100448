package tenant_test

// These tests run the data layer's isolation (the interceptors and hooks
// in ent/schema) and ent's generated pagination and filters on both
// SQLite and PostgreSQL, at the ent level: the same behaviour the GraphQL
// tests in package graph check through the server on SQLite.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"entgo.io/contrib/entgql"

	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/attempt"
	"github.com/heraldhq/herald/ent/delivery"
	"github.com/heraldhq/herald/ent/endpoint"
	"github.com/heraldhq/herald/ent/schema"
	"github.com/heraldhq/herald/internal/pgtest"
	"github.com/heraldhq/herald/tenant"
	"github.com/heraldhq/herald/webhook"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// dialects runs f on a fresh SQLite file and a fresh PostgreSQL database.
func dialects(t *testing.T, f func(t *testing.T, c *ent.Client)) {
	for _, tc := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "herald.db") }},
		{"postgres", func(t *testing.T) string { return pgtest.New(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := db.Open(context.Background(), db.Config{DSN: tc.dsn(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			f(t, d.Client)
		})
	}
}

// world is two apps, each with an admin and a plain key, an endpoint, an
// event, a delivery and an attempt.
type world struct {
	apps                  [2]*ent.App
	admin, plain          [2]context.Context
	endpoints, deliveries [2]string
	events, attempts      [2]string
}

func build(t *testing.T, c *ent.Client) *world {
	t.Helper()
	sys := tenant.System(context.Background())
	w := &world{}
	for i := range 2 {
		app, err := c.App.Create().SetName(fmt.Sprintf("app%d", i)).Save(sys)
		if err != nil {
			t.Fatal(err)
		}
		w.apps[i] = app
		for _, admin := range []bool{true, false} {
			k, err := c.APIKey.Create().SetAppID(app.ID).SetName("k").SetAdmin(admin).SetPrefix("hrld_x").
				SetTokenHash([]byte(fmt.Sprintf("%d-%v", i, admin))).Save(sys)
			if err != nil {
				t.Fatal(err)
			}
			ctx := tenant.NewContext(context.Background(), tenant.Viewer{AppID: app.ID, KeyID: k.ID, Admin: admin})
			if admin {
				w.admin[i] = ctx
			} else {
				w.plain[i] = ctx
			}
		}
		// Created as the app's own plain key: the hook stamps the app.
		ctx := w.plain[i]
		ep, err := newEndpoint(c, fmt.Sprintf("ep%d", i)).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ep.AppID != app.ID {
			t.Fatalf("endpoint created in app %s, want the viewer's %s", ep.AppID, app.ID)
		}
		ev, err := c.Event.Create().SetEventType("order.created").SetPayload(json.RawMessage(`{"i":1}`)).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		dl, err := c.Delivery.Create().SetEventID(ev.ID).SetEndpointID(ep.ID).SetEventType(ev.EventType).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		at, err := c.Attempt.Create().SetDeliveryID(dl.ID).SetEndpointID(ep.ID).SetAttemptNumber(1).
			SetTrigger(attempt.TriggerSCHEDULED).SetSucceeded(true).SetRequestURL(ep.URL).
			SetRequestHeaders([]webhook.Header{}).SetDurationMs(1).SetStartedAt(schema.Now()).SetCompletedAt(schema.Now()).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		w.endpoints[i], w.events[i], w.deliveries[i], w.attempts[i] = ep.ID, ev.ID, dl.ID, at.ID
	}
	return w
}

func newEndpoint(c *ent.Client, name string) *ent.EndpointCreate {
	return c.Endpoint.Create().SetName(name).SetURL("https://example.com/" + name).
		SetEventTypes([]string{"order.*"}).SetAuth(webhook.Auth{Type: webhook.AuthNone}).
		SetRetryPolicy(webhook.DefaultRetryPolicy()).SetSecret("whsec_x")
}

func TestIsolation_AppKeysSeeOnlyTheirApp(t *testing.T) {
	dialects(t, func(t *testing.T, c *ent.Client) {
		w := build(t, c)
		for i, ctx := range []context.Context{w.plain[0], w.admin[0]} {
			eps, err := c.Endpoint.Query().IDs(ctx)
			if err != nil || len(eps) != 1 || eps[0] != w.endpoints[0] {
				t.Errorf("viewer %d: endpoints %v (%v), want only its app's", i, eps, err)
			}
			for name, n := range map[string]func() (int, error){
				"events":      func() (int, error) { return c.Event.Query().Count(ctx) },
				"deliveries":  func() (int, error) { return c.Delivery.Query().Count(ctx) },
				"attempts":    func() (int, error) { return c.Attempt.Query().Count(ctx) },
				"event types": func() (int, error) { return c.EventType.Query().Count(ctx) },
			} {
				if got, err := n(); err != nil || (name != "event types" && got != 1) || (name == "event types" && got != 0) {
					t.Errorf("viewer %d sees %d %s (%v)", i, got, name, err)
				}
			}
			// Another app's objects are simply not found.
			if _, err := c.Endpoint.Get(ctx, w.endpoints[1]); !ent.IsNotFound(err) {
				t.Errorf("viewer %d: other app's endpoint: %v, want not found", i, err)
			}
			if _, err := c.Delivery.Get(ctx, w.deliveries[1]); !ent.IsNotFound(err) {
				t.Errorf("viewer %d: other app's delivery: %v, want not found", i, err)
			}
			if n, err := c.Attempt.Query().Where(attempt.DeliveryID(w.deliveries[1])).Count(ctx); err != nil || n != 0 {
				t.Errorf("viewer %d: filtering on another app's delivery found %d attempts (%v)", i, n, err)
			}
		}
		// Apps and keys: admin keys see every app's, app keys their own.
		if n, err := c.App.Query().Count(w.admin[0]); err != nil || n != 2 {
			t.Errorf("admin sees %d apps (%v), want 2", n, err)
		}
		if n, err := c.App.Query().Count(w.plain[0]); err != nil || n != 1 {
			t.Errorf("app key sees %d apps (%v), want 1", n, err)
		}
		if n, err := c.APIKey.Query().Count(w.admin[0]); err != nil || n != 4 {
			t.Errorf("admin sees %d keys (%v), want 4", n, err)
		}
		if n, err := c.APIKey.Query().Count(w.plain[0]); err != nil || n != 2 {
			t.Errorf("app key sees %d keys (%v), want its app's 2", n, err)
		}
	})
}

func TestIsolation_MutationsCannotReachAnotherApp(t *testing.T) {
	dialects(t, func(t *testing.T, c *ent.Client) {
		w := build(t, c)
		ctx := w.plain[0]
		if _, err := newEndpoint(c, "intruder").SetAppID(w.apps[1].ID).Save(ctx); err == nil {
			t.Error("created an endpoint in another app")
		}
		n, err := c.Endpoint.Update().Where(endpoint.ID(w.endpoints[1])).SetName("taken").Save(ctx)
		if err != nil || n != 0 {
			t.Errorf("bulk update reached %d endpoints of another app (%v)", n, err)
		}
		if err := c.Endpoint.UpdateOneID(w.endpoints[1]).SetName("taken").Exec(ctx); !ent.IsNotFound(err) {
			t.Errorf("update of another app's endpoint: %v, want not found", err)
		}
		if n, err := c.Delivery.Delete().Where(delivery.ID(w.deliveries[1])).Exec(ctx); err != nil || n != 0 {
			t.Errorf("deleted %d deliveries of another app (%v)", n, err)
		}
		other, err := c.Endpoint.Get(w.plain[1], w.endpoints[1])
		if err != nil || other.Name != "ep1" {
			t.Fatalf("the other app's endpoint changed: %+v %v", other, err)
		}
		if _, err := c.App.Create().SetName("x").Save(ctx); err == nil {
			t.Error("an app key created an app")
		}
		if _, err := c.App.Create().SetName("x").Save(w.admin[0]); err != nil {
			t.Errorf("an admin key could not create an app: %v", err)
		}
		if _, err := c.Endpoint.Query().Count(context.Background()); !errors.Is(err, tenant.ErrNoViewer) {
			t.Errorf("query without a viewer: %v, want ErrNoViewer", err)
		}
	})
}

func TestSoftDelete_HidesDeletedEndpointsUnlessIncluded(t *testing.T) {
	dialects(t, func(t *testing.T, c *ent.Client) {
		w := build(t, c)
		ctx := w.plain[0]
		if err := c.Endpoint.UpdateOneID(w.endpoints[0]).SetDeletedAt(schema.Now()).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if n, err := c.Endpoint.Query().Count(ctx); err != nil || n != 0 {
			t.Errorf("a deleted endpoint is listed (%d, %v)", n, err)
		}
		ep, err := c.Delivery.Query().QueryEndpoint().Only(schema.IncludeDeleted(ctx))
		if err != nil || ep.ID != w.endpoints[0] {
			t.Errorf("a delivery's deleted endpoint with IncludeDeleted: %v %v", ep, err)
		}
	})
}

// TestPagination_VisitsEveryItemOnceInOrder pages through endpoints that
// share a creation time (ties broken by ID) forwards and backwards, and
// filters deliveries, through ent's generated cursor SQL.
func TestPagination_VisitsEveryItemOnceInOrder(t *testing.T) {
	dialects(t, func(t *testing.T, c *ent.Client) {
		w := build(t, c)
		ctx := w.plain[0]
		at := schema.Now().Truncate(time.Microsecond)
		want := []string{w.endpoints[0]}
		for i := range 24 {
			ep, err := newEndpoint(c, fmt.Sprintf("p%02d", i)).SetCreatedAt(at).Save(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, ep.ID)
		}
		order := &ent.EndpointOrder{Direction: entgql.OrderDirectionAsc, Field: ent.EndpointOrderFieldCreatedAt}
		var got []string
		var after *ent.Cursor
		first := 10
		for {
			conn, err := c.Endpoint.Query().Paginate(ctx, after, &first, nil, nil, ent.WithEndpointOrder(order))
			if err != nil {
				t.Fatal(err)
			}
			if conn.TotalCount != len(want) {
				t.Errorf("total count %d, want %d", conn.TotalCount, len(want))
			}
			for _, e := range conn.Edges {
				got = append(got, e.Node.ID)
			}
			if !conn.PageInfo.HasNextPage {
				break
			}
			after = conn.PageInfo.EndCursor
		}
		if fmt.Sprint(got[1:]) != fmt.Sprint(sortedCopy(want[1:])) || got[0] != want[0] {
			t.Errorf("pages visited\n%v\nwant the first endpoint, then the ties by ID\n%v", got, want)
		}
		last := 7
		conn, err := c.Endpoint.Query().Paginate(ctx, nil, nil, nil, &last, ent.WithEndpointOrder(order))
		if err != nil {
			t.Fatal(err)
		}
		if len(conn.Edges) != 7 || conn.Edges[6].Node.ID != got[len(got)-1] || !conn.PageInfo.HasPreviousPage {
			t.Errorf("last 7: %d edges, ends at %s, want %s", len(conn.Edges), conn.Edges[len(conn.Edges)-1].Node.ID, got[len(got)-1])
		}

		status := delivery.StatusPending
		typ := "order.created"
		since := at.Add(-time.Hour)
		where := &ent.DeliveryWhereInput{Status: &status, EventType: &typ, CreatedAtGTE: &since}
		dconn, err := c.Delivery.Query().Paginate(ctx, nil, &first, nil, nil, ent.WithDeliveryFilter(where.Filter))
		if err != nil {
			t.Fatal(err)
		}
		if dconn.TotalCount != 1 || dconn.Edges[0].Node.ID != w.deliveries[0] {
			t.Errorf("filtered deliveries: %d, want the app's one", dconn.TotalCount)
		}
	})
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c
}
