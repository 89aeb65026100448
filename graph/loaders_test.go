package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/heraldhq/herald/apps"
	"github.com/heraldhq/herald/catalog"
	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/delivery"
	"github.com/heraldhq/herald/graph"
	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/signing"
	tenantctx "github.com/heraldhq/herald/tenant"
	"github.com/heraldhq/herald/webhook"
)

// countedAPI is the GraphQL API over a database whose endpoint queries are
// counted, served the way the server serves it (loaders, field middleware,
// error presenter) to callers whose viewer a header names.
type countedAPI struct {
	t       *testing.T
	client  *ent.Client
	queries atomic.Int64 // endpoint queries run
	url     string
	viewers map[string]tenantctx.Viewer
}

func newCountedAPI(t *testing.T) *countedAPI {
	t.Helper()
	d, err := db.Open(context.Background(), db.Config{Path: filepath.Join(t.TempDir(), "herald.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := catalog.MigrateToShared(context.Background(), d.Client); err != nil {
		t.Fatal(err)
	}
	api := &countedAPI{t: t, client: d.Client, viewers: map[string]tenantctx.Viewer{}}
	d.Client.Endpoint.Intercept(ent.InterceptFunc(func(next ent.Querier) ent.Querier {
		return ent.QuerierFunc(func(ctx context.Context, q ent.Query) (ent.Value, error) {
			api.queries.Add(1)
			return next.Query(ctx, q)
		})
	}))
	gql := handler.New(graph.NewSchema(graph.Deps{Client: d.Client}))
	gql.AddTransport(transport.POST{})
	gql.AroundResponses(graph.Loaders(d.Client))
	gql.AroundFields(graph.Middleware)
	gql.SetErrorPresenter(graph.ErrorPresenter(heraldtest.Logger(t)))
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, ok := api.viewers[r.Header.Get("X-Test-Viewer")]
		if !ok {
			http.Error(w, "unknown viewer", http.StatusUnauthorized)
			return
		}
		gql.ServeHTTP(w, r.WithContext(tenantctx.NewContext(r.Context(), v)))
	}))
	t.Cleanup(hs.Close)
	api.url = hs.URL
	return api
}

// do runs a query as the named viewer.
func (api *countedAPI) do(viewer, query string) *heraldtest.Response {
	body, _ := json.Marshal(map[string]any{"query": query})
	req, _ := http.NewRequest(http.MethodPost, api.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Test-Viewer", viewer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		api.t.Errorf("query as %s: %v", viewer, err)
		return &heraldtest.Response{}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := &heraldtest.Response{Status: resp.StatusCode, Body: raw}
	var env struct {
		Data   json.RawMessage    `json:"data"`
		Errors []heraldtest.Error `json:"errors"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		api.t.Errorf("query as %s: HTTP %d %s", viewer, resp.StatusCode, raw)
	}
	r.Data, r.Errors = env.Data, env.Errors
	return r
}

// seed creates an app with n endpoints and one delivery to each of them
// per event of events, and returns the app and its endpoints.
func (api *countedAPI) seed(name string, n, events int) (*ent.App, []*ent.Endpoint) {
	t := api.t
	t.Helper()
	ctx := tenantctx.System(context.Background())
	a, err := apps.Create(ctx, api.client, apps.Input{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	eps := make([]*ent.Endpoint, n)
	for i := range eps {
		secret, err := signing.NewSecret(nil)
		if err != nil {
			t.Fatal(err)
		}
		eps[i], err = api.client.Endpoint.Create().SetAppID(a.ID).SetName(fmt.Sprintf("%s hook %d", name, i)).
			SetURL(fmt.Sprintf("https://%s.example/%d", name, i)).SetEventTypes([]string{"*"}).
			SetAuth(webhook.Auth{Type: webhook.AuthNone}).SetRetryPolicy(webhook.DefaultRetryPolicy()).
			SetSecret(secret).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
	}
	for range events {
		ev, err := api.client.Event.Create().SetAppID(a.ID).SetEventType("order.created").SetPayload(json.RawMessage(`{}`)).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, ep := range eps {
			api.deliver(a.ID, ev.ID, ep.ID)
		}
	}
	return a, eps
}

// deliver stores a succeeded delivery of app's event to an endpoint.
func (api *countedAPI) deliver(appID, eventID, endpointID string) *ent.Delivery {
	d, err := api.client.Delivery.Create().SetAppID(appID).SetEventID(eventID).SetEndpointID(endpointID).
		SetEventType("order.created").SetStatus(delivery.StatusSucceeded).Save(tenantctx.System(context.Background()))
	if err != nil {
		api.t.Fatal(err)
	}
	return d
}

type deliveriesWithEndpoints struct {
	Deliveries struct {
		Edges []struct {
			Node *struct {
				ID, EndpointID string
				Endpoint       struct{ ID, Name string }
			}
		}
	}
}

const deliveriesWithEndpointsOp = `{ deliveries(first: 100) { edges { node { id endpointID endpoint { id name } } } } }`

func TestDeliveryEndpoint_ListOfDeliveriesLoadsEndpointsInOneQuery(t *testing.T) {
	t.Parallel()
	api := newCountedAPI(t)
	a, _ := api.seed("alpha", 25, 2) // 50 deliveries, 2 to each endpoint
	api.viewers["a"] = tenantctx.Viewer{AppID: a.ID, KeyID: "key_a"}

	api.queries.Store(0)
	r := api.do("a", deliveriesWithEndpointsOp)
	var out deliveriesWithEndpoints
	r.Decode(t, &out)
	if n := len(out.Deliveries.Edges); n != 50 {
		t.Fatalf("got %d deliveries, want 50", n)
	}
	for _, e := range out.Deliveries.Edges {
		if e.Node.Endpoint.ID != e.Node.EndpointID {
			t.Fatalf("delivery %s of endpoint %s shows endpoint %s", e.Node.ID, e.Node.EndpointID, e.Node.Endpoint.ID)
		}
	}
	// The deliveries query itself reads no endpoint; their endpoints cost
	// one query per batch. A batch closes 2 ms after its first key, so a
	// busy machine may cut the 50 loads into two or three batches; one
	// query per delivery would be 50.
	n := api.queries.Load()
	t.Logf("50 deliveries with their endpoints: %d endpoint queries", n)
	if n > 5 {
		t.Fatalf("50 deliveries with their endpoints ran %d endpoint queries, want 1 (a few on a busy machine)", n)
	}
}

func TestDeliveryEndpoint_NeverShowsAnotherAppsEndpoint(t *testing.T) {
	t.Parallel()
	api := newCountedAPI(t)
	a, epsA := api.seed("alpha", 5, 2)
	b, epsB := api.seed("beta", 5, 2)
	// A delivery of app A that names app B's endpoint: no API can make
	// one, but the loader must not trust the data to be consistent.
	ev, err := api.client.Event.Query().First(tenantctx.NewContext(context.Background(), tenantctx.Viewer{AppID: a.ID}))
	if err != nil {
		t.Fatal(err)
	}
	api.deliver(a.ID, ev.ID, epsB[0].ID)
	// Admins acting in each app, asking at the same time.
	api.viewers["admin in a"] = tenantctx.Viewer{AppID: a.ID, KeyID: "key_admin", Admin: true}
	api.viewers["admin in b"] = tenantctx.Viewer{AppID: b.ID, KeyID: "key_admin", Admin: true}
	own := map[string]map[string]bool{"admin in a": ids(epsA), "admin in b": ids(epsB)}

	var wg sync.WaitGroup
	for range 5 {
		for viewer := range own {
			wg.Go(func() {
				r := api.do(viewer, deliveriesWithEndpointsOp)
				var out deliveriesWithEndpoints
				if err := json.Unmarshal(r.Data, &out); err != nil {
					t.Errorf("%s: %s", viewer, r.Body)
					return
				}
				for _, e := range out.Deliveries.Edges {
					if e.Node != nil && !own[viewer][e.Node.Endpoint.ID] {
						t.Errorf("%s sees endpoint %s (%s) of another app through delivery %s", viewer, e.Node.Endpoint.ID, e.Node.Endpoint.Name, e.Node.ID)
					}
				}
				if viewer == "admin in a" {
					if r.Code() != "NOT_FOUND" {
						t.Errorf("the delivery naming another app's endpoint: want NOT_FOUND, got %s", r.Body)
					}
				} else if len(r.Errors) > 0 {
					t.Errorf("%s: %s", viewer, r.Body)
				}
			})
		}
	}
	wg.Wait()
}

func ids(eps []*ent.Endpoint) map[string]bool {
	m := make(map[string]bool, len(eps))
	for _, ep := range eps {
		m[ep.ID] = true
	}
	return m
}
