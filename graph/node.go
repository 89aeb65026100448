package graph

import (
	"context"

	"github.com/heraldhq/herald/ent/apikey"
	"github.com/heraldhq/herald/ent/app"
	"github.com/heraldhq/herald/ent/attempt"
	"github.com/heraldhq/herald/ent/auditrecord"
	"github.com/heraldhq/herald/ent/catalog"
	"github.com/heraldhq/herald/ent/delivery"
	"github.com/heraldhq/herald/ent/endpoint"
	"github.com/heraldhq/herald/ent/event"
	"github.com/heraldhq/herald/ent/eventtype"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/ids"
)

// tables maps ID prefixes to the tables of their entities.
var tables = map[string]string{
	ids.App:       app.Table,
	ids.Catalog:   catalog.Table,
	ids.APIKey:    apikey.Table,
	ids.Endpoint:  endpoint.Table,
	ids.EventType: eventtype.Table,
	ids.Event:     event.Table,
	ids.Delivery:  delivery.Table,
	ids.Attempt:   attempt.Table,
	// Audit records: restricted credentials find only their own.
	ids.AuditRecord: auditrecord.Table,
}

// nodeType resolves the table of a global ID from its prefix.
func nodeType(_ context.Context, id string) (string, error) {
	if t, ok := tables[ids.Prefix(id)]; ok {
		return t, nil
	}
	return "", fault.NotFoundf("%q is not a Herald ID: IDs look like ep_01JDZ6Q4W8X3M5N7P9R2T4V6X8", id)
}
