package graph

import (
	"context"
	"log/slog"
	"time"

	"entgo.io/contrib/entgql"
	"github.com/99designs/gqlgen/graphql"

	"github.com/heraldhq/herald/audit"
	"github.com/heraldhq/herald/endpoints"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/auditrecord"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/graph/model"
)

// auditMode says how a mutation's audit record is written.
type auditMode int

const (
	// inTx: the service that makes the change writes the record in the
	// change's transaction. A mutation that returns without one is a bug
	// (logged); TestAudit_EveryMutationLeavesOneRecord finds it.
	inTx auditMode = iota
	// inTxOrNothing: as inTx when the mutation changes something; when
	// it changes nothing (a replay that found no delivery, a reveal),
	// the middleware writes the record in a transaction of its own.
	inTxOrNothing
	// notAudited: the mutation changes no configuration or history a
	// person made: a listener's CLI reporting the answer to a delivery
	// it forwarded, which the delivery's attempt records as it records a
	// receiver's answer.
	notAudited
)

// auditModes classifies every mutation of the schema. Keep it complete:
// TestAudit_EveryMutationIsClassified fails for a mutation missing here,
// so that a new mutation cannot go unaudited by mistake.
var auditModes = map[string]auditMode{
	"createApp":              inTx,
	"updateApp":              inTx,
	"createAPIKey":           inTx,
	"revokeAPIKey":           inTx,
	"createPortalSession":    inTx,
	"revokePortalSession":    inTx,
	"revokePortalSessions":   inTxOrNothing, // none left to revoke
	"updatePortalSettings":   inTx,
	"createEndpoint":         inTx,
	"updateEndpoint":         inTx,
	"deleteEndpoint":         inTx,
	"rotateEndpointSecret":   inTx,
	"revealEndpointSecret":   inTx, // the service records each reveal
	"testEndpoint":           inTx,
	"createEventType":        inTx,
	"updateEventType":        inTx,
	"archiveEventType":       inTx,
	"unarchiveEventType":     inTx,
	"publishEvent":           inTx, // in the publisher's group commit
	"publishEvents":          inTx,
	"retryDelivery":          inTx,
	"retryDeliveries":        inTxOrNothing, // every delivery refused
	"replayDeliveries":       inTxOrNothing, // no delivery matched
	"rotateEncryptionKeys":   inTxOrNothing, // nothing left to re-encrypt
	"createCatalog":          inTx,
	"updateCatalog":          inTx,
	"deleteCatalog":          inTx,
	"importEventTypes":       inTxOrNothing, // a dry run changes nothing
	"createListener":         inTx,          // an endpoint's creation
	"reportListenerDelivery": notAudited,
}

// Audit returns a field middleware that runs every root mutation as an
// audited operation (audit.Begin) and checks that it wrote its record.
func Audit(client *ent.Client, log *slog.Logger) graphql.FieldMiddleware {
	return func(ctx context.Context, next graphql.Resolver) (any, error) {
		fc := graphql.GetFieldContext(ctx)
		if fc == nil || fc.Object != "Mutation" || fc.Field.Field == nil {
			return next(ctx)
		}
		action := fc.Field.Name
		if auditModes[action] == notAudited {
			return next(ctx)
		}
		ctx, op := audit.Begin(ctx, action)
		res, err := next(ctx)
		if err != nil || op.Written() > 0 {
			return res, err
		}
		mode, ok := auditModes[action]
		if ok && mode == inTx {
			log.ErrorContext(ctx, "a mutation returned without its audit record", "action", action)
			return res, err
		}
		if ferr := audit.Finish(ctx, client, fallbackChange(fc.Args), time.Now()); ferr != nil {
			log.ErrorContext(ctx, "write audit record", "action", action, "err", ferr)
		}
		return res, err
	}
}

// fallbackChange names the target of a mutation that changed nothing
// from its arguments.
func fallbackChange(args map[string]any) audit.Change {
	c := audit.Change{Fields: map[string]any{"changed": 0}}
	for _, name := range []string{"id", "endpointId", "appId"} {
		if v, ok := args[name].(string); ok && v != "" {
			c.TargetID = v
			break
		}
	}
	if ids, ok := args["ids"].([]string); ok {
		c.Fields["ids"] = ids
		if len(ids) > 0 {
			c.TargetID = ids[0]
		}
	}
	return c
}

// auditLog returns the audit log of the caller's app (their own records
// for restricted credentials: the AuditRecord schema's interceptor), newest
// first.
func (r *Resolver) auditLog(ctx context.Context, after *entgql.Cursor[string], first *int, before *entgql.Cursor[string], last *int, where *model.AuditLogWhere) (*ent.AuditRecordConnection, error) {
	q := r.client.AuditRecord.Query()
	if where != nil {
		if where.Actor != nil {
			q.Where(auditrecord.ActorID(*where.Actor))
		}
		if where.Target != nil {
			q.Where(auditrecord.TargetID(*where.Target))
		}
		if where.Action != nil {
			if _, ok := auditModes[*where.Action]; !ok {
				return nil, fault.Invalid("where.action", "%q is not a mutation; actions are mutation names such as createEndpoint", *where.Action)
			}
			q.Where(auditrecord.Action(*where.Action))
		}
		if where.Since != nil {
			q.Where(auditrecord.CreatedAtGTE(where.Since.UTC()))
		}
	}
	return q.Paginate(ctx, after, first, before, last,
		ent.WithAuditRecordOrder(&ent.AuditRecordOrder{Direction: entgql.OrderDirectionDesc, Field: ent.AuditRecordOrderFieldCreatedAt}))
}

// encryptionKeys reports the keys of endpoints' secrets (admin keys).
func (r *Resolver) encryptionKeys(ctx context.Context) (*model.EncryptionKeys, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	uses, plain, err := r.endpoints.KeyUses(ctx)
	if err != nil {
		return nil, err
	}
	return &model.EncryptionKeys{Primary: r.endpoints.Secrets.Primary(), Keys: keyUsesOut(uses), Plaintext: plain}, nil
}

func keyUsesOut(uses []endpoints.KeyUse) []*model.EncryptionKeyUse {
	out := make([]*model.EncryptionKeyUse, len(uses))
	for i, u := range uses {
		out[i] = &model.EncryptionKeyUse{ID: u.ID, Configured: u.Configured, Endpoints: u.Endpoints}
	}
	return out
}

// rotateEncryptionKeys seals endpoints' secrets again under the primary
// key, in bounded batches (admin keys).
func (r *Resolver) rotateEncryptionKeys(ctx context.Context, in *model.RotateEncryptionKeysInput) (*model.EncryptionKeyRotation, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	batch, batches := endpoints.DefaultResealBatch, 100
	if in != nil && in.BatchSize != nil {
		if *in.BatchSize < 1 || *in.BatchSize > endpoints.MaxResealBatch {
			return nil, fault.Invalid("input.batchSize", "must be 1-%d", endpoints.MaxResealBatch)
		}
		batch = *in.BatchSize
	}
	if in != nil && in.MaxBatches != nil {
		if *in.MaxBatches < 1 || *in.MaxBatches > 10000 {
			return nil, fault.Invalid("input.maxBatches", "must be 1-10000")
		}
		batches = *in.MaxBatches
	}
	n, err := r.endpoints.Reseal(ctx, batch, batches)
	if err != nil {
		return nil, err
	}
	uses, plain, err := r.endpoints.KeyUses(ctx)
	if err != nil {
		return nil, err
	}
	out := &model.EncryptionKeyRotation{Primary: r.endpoints.Secrets.Primary(), Resealed: n, Remaining: []*model.EncryptionKeyUse{}, Done: plain == 0}
	for _, u := range keyUsesOut(uses) {
		if u.ID != out.Primary && u.Endpoints > 0 {
			out.Remaining = append(out.Remaining, u)
			out.Done = false
		}
	}
	return out, nil
}
