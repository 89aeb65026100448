package endpoints_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/apps"
	"github.com/heraldhq/herald/catalog"
	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/endpoints"
	"github.com/heraldhq/herald/secret"
	"github.com/heraldhq/herald/tenant"
)

// TestUpdate_ReenableRacingAutoDisableIsNotLost disables an endpoint, as
// the engine does after too many failures, while an update that re-enables
// it is under way: at the moment the update reads the clock, after the
// caller saw the endpoint active and before the update is written. The
// update must still leave it enabled.
func TestUpdate_ReenableRacingAutoDisableIsNotLost(t *testing.T) {
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

	var armed atomic.Bool
	var id string
	keys, err := secret.NewKeyring(secret.Key{ID: "test", Bytes: make([]byte, secret.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	svc := &endpoints.Service{
		Secrets: keys,
		Client:  d.Client,
		Catalog: catalog.New(d.Client, 0),
		Policy:  destination.Policy{AllowHTTP: true, AllowPrivate: true},
		Now: func() time.Time {
			now := time.Now()
			if armed.CompareAndSwap(true, false) {
				// The engine disables the endpoint now. A deadline, in
				// case the update holds the writer at this point.
				dctx, cancel := context.WithTimeout(tenant.System(ctx), 5*time.Second)
				defer cancel()
				err := d.Client.Endpoint.UpdateOneID(id).
					SetIsActive(false).SetDisabledReason("1 consecutive failed delivery").SetDisabledAt(now.UTC()).
					Exec(dctx)
				if err != nil {
					t.Errorf("disable the endpoint during the update: %v", err)
				}
			}
			return now
		},
	}
	name, url := "hook", "http://127.0.0.1:9/hook"
	ep, _, err := svc.Create(viewer, endpoints.Input{Name: &name, URL: &url, EventTypes: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	id = ep.ID

	armed.Store(true)
	active := true
	got, err := svc.Update(viewer, id, endpoints.Input{IsActive: &active})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if armed.Load() {
		t.Fatal("the update did not read the clock: the race was not staged")
	}
	stored, err := d.Client.Endpoint.Get(tenant.System(ctx), id)
	if err != nil {
		t.Fatal(err)
	}
	if !got.IsActive || !stored.IsActive || stored.DisabledReason != nil {
		t.Fatalf("after updateEndpoint(isActive: true) raced an automatic disable: returned active=%v, stored active=%v (reason %v); want it enabled",
			got.IsActive, stored.IsActive, stored.DisabledReason)
	}
}
