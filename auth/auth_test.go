package auth_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/apps"
	"github.com/heraldhq/herald/auth"
	"github.com/heraldhq/herald/catalog"
	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/apikey"
	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/tenant"
)

// setup opens a fresh database with the default app and returns it with
// the admin key's token and ID.
func setup(t *testing.T) (d *db.DB, token, keyID string) {
	t.Helper()
	ctx := context.Background()
	d, err := db.Open(ctx, db.Config{Path: filepath.Join(t.TempDir(), "herald.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := catalog.MigrateToShared(ctx, d.Client); err != nil {
		t.Fatal(err)
	}
	token, err = apps.Bootstrap(ctx, d.Client, nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := d.Client.APIKey.Query().Where(apikey.TokenHash(auth.HashToken(token))).Only(tenant.System(ctx))
	if err != nil {
		t.Fatal(err)
	}
	return d, token, k.ID
}

// holdFirstKeyQuery makes the first API key query, once it has read its
// rows, wait until release is closed; loaded is closed when it starts
// waiting. Later queries pass straight through.
func holdFirstKeyQuery(client *ent.Client) (loaded, release chan struct{}) {
	loaded, release = make(chan struct{}), make(chan struct{})
	var held atomic.Bool
	client.APIKey.Intercept(ent.InterceptFunc(func(next ent.Querier) ent.Querier {
		return ent.QuerierFunc(func(ctx context.Context, q ent.Query) (ent.Value, error) {
			v, err := next.Query(ctx, q)
			if held.CompareAndSwap(false, true) {
				close(loaded)
				<-release
			}
			return v, err
		})
	}))
	return loaded, release
}

func TestAuthenticate_RevocationDuringLookupIsNotUndoneByTheCache(t *testing.T) {
	t.Parallel()
	d, token, keyID := setup(t)
	ctx := context.Background()
	// A long TTL: only the revocation may drop the cached key.
	a := auth.NewAuthenticator(d.Client, heraldtest.Logger(t), time.Hour)
	loaded, release := holdFirstKeyQuery(d.Client)

	inFlight := make(chan error, 1)
	go func() {
		_, err := a.Authenticate(ctx, "Bearer "+token, "")
		inFlight <- err
	}()
	<-loaded // the lookup has read the key as it was before the revocation
	if _, err := a.Revoke(tenant.System(ctx), keyID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	close(release)
	<-inFlight // it started before the revocation: either answer is fine

	if _, err := a.Authenticate(ctx, "Bearer "+token, ""); err == nil {
		t.Fatal("a revoked key is accepted: the lookup that was in flight cached it after the revocation")
	}
}

func TestRevoked_ForgetsTheKeyAndTellsListeners(t *testing.T) {
	t.Parallel()
	d, token, keyID := setup(t)
	ctx := context.Background()
	a := auth.NewAuthenticator(d.Client, heraldtest.Logger(t), time.Hour)
	var told []string
	a.OnRevoke(func(id string) { told = append(told, id) })
	if _, err := a.Authenticate(ctx, "Bearer "+token, ""); err != nil {
		t.Fatal(err)
	}
	// Another replica revokes the key in the shared database, then tells
	// this one.
	if err := d.Client.APIKey.UpdateOneID(keyID).SetRevokedAt(time.Now().UTC()).Exec(tenant.System(ctx)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, "Bearer "+token, ""); err != nil {
		t.Fatalf("before Revoked the cached key should still be trusted (TTL 1h): %v", err)
	}
	a.Revoked(keyID)
	if len(told) != 1 || told[0] != keyID {
		t.Fatalf("listeners were told %v, want [%s]", told, keyID)
	}
	if _, err := a.Authenticate(ctx, "Bearer "+token, ""); err == nil {
		t.Fatal("the key is still accepted after Revoked")
	}
}
