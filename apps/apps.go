// Package apps creates Herald's tenants: an app in its event catalog, and
// on first start the default app with its first API key.
package apps

import (
	"context"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/heraldhq/herald/audit"
	"github.com/heraldhq/herald/auth"
	"github.com/heraldhq/herald/catalog"
	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/tenant"
)

// Input describes a new app.
type Input struct {
	Name                    string
	AcceptUnknownEventTypes bool
	// CatalogID is the shared catalog whose types the app publishes
	// (default: the installation's default catalog).
	CatalogID string
}

// Create creates an app in its catalog, and its audit record, in one
// transaction. The context's viewer must be an admin (or the context a
// system one); the database must have been prepared by
// catalog.MigrateToShared.
func Create(ctx context.Context, client *ent.Client, in Input) (*ent.App, error) {
	name := strings.TrimSpace(in.Name)
	if n := utf8.RuneCountInString(name); n == 0 || n > 255 {
		return nil, fault.Invalid("input.name", "must be 1-255 characters")
	}
	catalogID, err := catalog.ResolveApp(ctx, client, "input.catalogId", in.CatalogID)
	if err != nil {
		return nil, err
	}
	var a *ent.App
	err = db.WithTx(ctx, client, func(tx *ent.Client) error {
		var err error
		a, err = tx.App.Create().SetName(name).SetAcceptUnknownEventTypes(in.AcceptUnknownEventTypes).SetCatalogID(catalogID).Save(ctx)
		if err != nil {
			return fmt.Errorf("create app: %w", err)
		}
		return audit.Record(ctx, tx, audit.Change{AppID: a.ID, TargetType: "App", TargetID: a.ID,
			Fields: map[string]any{"name": name, "acceptUnknownEventTypes": in.AcceptUnknownEventTypes, "catalogId": catalogID}}, a.CreatedAt)
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// DefaultAppName is the name of the app created on first start.
const DefaultAppName = "default"

// Bootstrap prepares an empty database, once catalog.MigrateToShared has
// given it its default catalog: it creates the default app and an admin
// API key for it, and returns the key's token, which is not stored
// and must be shown to the operator now. On a database that already has an
// app it does nothing and returns "".
func Bootstrap(ctx context.Context, client *ent.Client, r io.Reader) (string, error) {
	ctx = tenant.System(ctx)
	n, err := client.App.Query().Count(ctx)
	if err != nil {
		return "", fmt.Errorf("bootstrap: count apps: %w", err)
	}
	if n > 0 {
		return "", nil
	}
	var token string
	err = db.WithTx(ctx, client, func(tx *ent.Client) error {
		a, err := Create(ctx, tx, Input{Name: DefaultAppName})
		if err != nil {
			return err
		}
		_, token, err = auth.CreateKey(ctx, tx, auth.KeyInput{AppID: a.ID, Name: "initial admin key", Admin: true}, r)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("bootstrap: %w", err)
	}
	return token, nil
}
