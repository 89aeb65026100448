package graph

import (
	"context"
	"fmt"
	"time"

	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/delivery"
	"github.com/heraldhq/herald/ent/endpoint"
	"github.com/heraldhq/herald/graph/model"
)

// backlog counts the unfinished deliveries of some endpoints, through the
// engine's due index (endpoint_id, next_attempt_at), which holds exactly
// the unfinished ones.
func backlog(ctx context.Context, client *ent.Client, endpointIDs []string, now time.Time) (*model.Backlog, error) {
	out := &model.Backlog{}
	if len(endpointIDs) == 0 {
		return out, nil
	}
	of := delivery.EndpointIDIn(endpointIDs...)
	var err error
	if out.Unfinished, err = client.Delivery.Query().Where(of, delivery.NextAttemptAtNotNil()).Count(ctx); err != nil {
		return nil, fmt.Errorf("count unfinished deliveries: %w", err)
	}
	// Being sent counts as due: on PostgreSQL a claimed delivery's
	// next_attempt_at is its lease's end.
	due := delivery.Or(delivery.NextAttemptAtLTE(now), delivery.And(delivery.NextAttemptAtNotNil(), delivery.StatusEQ(delivery.StatusSending)))
	if out.Due, err = client.Delivery.Query().Where(of, due).Count(ctx); err != nil {
		return nil, fmt.Errorf("count due deliveries: %w", err)
	}
	if out.Due > 0 {
		oldest, err := client.Delivery.Query().Where(of, delivery.NextAttemptAtLTE(now)).Order(ent.Asc(delivery.FieldNextAttemptAt)).First(ctx)
		if err != nil && !ent.IsNotFound(err) {
			return nil, fmt.Errorf("find the oldest due delivery: %w", err)
		}
		if oldest != nil {
			out.OldestDueAt = oldest.NextAttemptAt
		}
	}
	return out, nil
}

// appBacklog counts the unfinished deliveries of an app, over its
// endpoints (deleted ones have none left). ctx reads the app (see
// readApp).
func (r *Resolver) appBacklog(ctx context.Context, appID string) (*model.Backlog, error) {
	ids, err := r.client.Endpoint.Query().Where(endpoint.AppID(appID), endpoint.DeletedAtIsNil()).IDs(ctx)
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	return backlog(ctx, r.client, ids, r.now().UTC())
}
