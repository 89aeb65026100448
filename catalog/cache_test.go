package catalog_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/apps"
	"github.com/heraldhq/herald/catalog"
	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/tenant"
)

func TestCatalog_ChangeDuringLoadIsNotUndoneByTheCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, err := db.Open(ctx, db.Config{Path: filepath.Join(t.TempDir(), "herald.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := catalog.MigrateToShared(ctx, d.Client); err != nil {
		t.Fatal(err)
	}
	if _, err := apps.Bootstrap(ctx, d.Client, nil); err != nil {
		t.Fatal(err)
	}
	appID, err := d.Client.App.Query().OnlyID(tenant.System(ctx))
	if err != nil {
		t.Fatal(err)
	}
	viewer := tenant.NewContext(ctx, tenant.Viewer{AppID: appID, KeyID: "key_test", Admin: true})

	// The first event type query, once it has read the catalog, waits
	// until released: a load in flight.
	loaded, release := make(chan struct{}), make(chan struct{})
	var held atomic.Bool
	d.Client.EventType.Intercept(ent.InterceptFunc(func(next ent.Querier) ent.Querier {
		return ent.QuerierFunc(func(ctx context.Context, q ent.Query) (ent.Value, error) {
			v, err := next.Query(ctx, q)
			if held.CompareAndSwap(false, true) {
				close(loaded)
				<-release
			}
			return v, err
		})
	}))
	// A long TTL: only invalidation may drop the cached catalog.
	c := catalog.New(d.Client, time.Hour)
	payload := json.RawMessage(`{}`)

	inFlight := make(chan error, 1)
	go func() { inFlight <- c.CheckPublish(ctx, appID, "invoice.paid", payload) }()
	<-loaded // the load has read a catalog without invoice.paid
	if _, err := c.Create(viewer, catalog.CreateInput{Name: "invoice.paid"}); err != nil {
		t.Fatalf("create event type: %v", err)
	}
	close(release)
	<-inFlight // it started before the type existed: either answer is fine

	if err := c.CheckPublish(ctx, appID, "invoice.paid", payload); err != nil {
		t.Fatalf("publishing the new type is refused (%v): the load that was in flight cached the catalog from before it", err)
	}
}
