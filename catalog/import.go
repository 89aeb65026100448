package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/heraldhq/herald/audit"
	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/eventtype"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/quota"
	"github.com/heraldhq/herald/tenant"
)

// ImportOptions say how Import treats what the list leaves out, and
// whether it changes anything.
type ImportOptions struct {
	// ArchiveMissing archives the target's types that the list leaves out
	// (Herald's system types aside). Without it they stay as they are.
	// Types are never deleted: events and endpoints refer to them.
	ArchiveMissing bool
	// DryRun reports what the import would change, and changes nothing.
	DryRun bool
}

// ImportResult says what an import changed, or would change: the names
// of the types created, updated (description, example or schema),
// archived and unarchived, in name order, and how many it left as they
// were.
type ImportResult struct {
	Created, Updated, Archived, Unarchived []string
	Unchanged                              int
	DryRun                                 bool
}

// Changed reports whether the import changed (or would change) anything.
func (r *ImportResult) Changed() bool {
	return len(r.Created)+len(r.Updated)+len(r.Archived)+len(r.Unarchived) > 0
}

// MaxImport bounds the definitions of one import.
const MaxImport = MaxSharedTypes

// errDryRun rolls a dry run's transaction back.
var errDryRun = errors.New("dry run")

// Import makes a shared catalog's types (catalogID; admin keys or a system
// context) or the viewer's app's own types (catalogID "") what defs say:
// it creates the types that are missing and updates those that differ, in
// one transaction, so that importing the same list again changes nothing.
// Faults name the list "input.eventTypes"; every invalid definition is
// reported at once.
func (c *Catalog) Import(ctx context.Context, catalogID string, defs []Definition, opts ImportOptions) (*ImportResult, error) {
	sys := tenant.IsSystem(ctx)
	v, ok := tenant.FromContext(ctx)
	if !ok && !sys {
		return nil, tenant.ErrNoViewer
	}
	if catalogID == "" && !ok {
		return nil, errors.New("import event types: an app's own types need a viewer")
	}
	if catalogID != "" && !sys && !v.Admin {
		return nil, fault.Forbiddenf("only admin keys import into a shared catalog: leave catalogId out to import this app's own types")
	}
	if len(defs) > MaxImport {
		return nil, fault.Invalid("input.eventTypes", "at most %d event types at once, got %d", MaxImport, len(defs))
	}
	if err := checkDefinitions(defs); err != nil {
		return nil, err
	}
	// Shared types are written in a system context; an app's own in the
	// viewer's, which the data layer keeps in the app.
	write := ctx
	if catalogID != "" {
		write = tenant.System(ctx)
	}
	res := &ImportResult{DryRun: opts.DryRun}
	err := db.WithTx(write, c.client, func(tx *ent.Client) error {
		var existing []*ent.EventType
		var err error
		if catalogID != "" {
			if err := lockCatalog(write, tx, "input.catalogId", catalogID); err != nil {
				return err
			}
			existing, err = tx.EventType.Query().Where(eventtype.CatalogID(catalogID)).All(write)
		} else {
			if err := quota.Lock(ctx, tx, v.AppID); err != nil {
				return err
			}
			existing, err = tx.EventType.Query().Where(OwnTypes(v.AppID)).All(tenant.System(ctx))
		}
		if err != nil {
			return fmt.Errorf("read the event types to import into: %w", err)
		}
		plan, err := c.plan(ctx, tx, catalogID, existing, defs, opts)
		if err != nil {
			return err
		}
		plan.summarize(res)
		if opts.DryRun {
			return errDryRun
		}
		if err := plan.apply(write, tx); err != nil {
			return err
		}
		target := catalogID
		if target == "" {
			target = v.AppID
		}
		return audit.Record(ctx, tx, audit.Change{TargetType: "Catalog", TargetID: target, Fields: map[string]any{
			"created": res.Created, "updated": res.Updated, "archived": res.Archived, "unarchived": res.Unarchived,
		}}, time.Now())
	})
	if errors.Is(err, errDryRun) {
		return res, nil
	}
	if _, ok := fault.As(err); ok {
		return nil, err
	}
	var list fault.List
	if errors.As(err, &list) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("import event types: %w", err)
	}
	if res.Changed() {
		if catalogID != "" {
			c.Changed(catalogID)
		} else {
			c.Changed(v.AppID)
		}
	}
	return res, nil
}

// checkDefinitions validates every definition, and reports every invalid
// one (up to 50 faults).
func checkDefinitions(defs []Definition) error {
	var errs fault.List
	seen := make(map[string]int, len(defs))
	for i, d := range defs {
		if len(errs) >= 50 {
			break
		}
		field := fmt.Sprintf("input.eventTypes[%d].", i)
		if err := checkName(field+"name", d.Name); err != nil {
			errs.Add(err)
			continue
		}
		if j, dup := seen[d.Name]; dup {
			errs.Add(fault.Invalid(field+"name", "%q is also eventTypes[%d]: each type once", d.Name, j))
			continue
		}
		seen[d.Name] = i
		if err := checkDocs(field, d.Description, d.Example, d.JSONSchema); err != nil {
			errs.Add(err)
		}
	}
	return errs.Err()
}

// change is one type an import creates or updates.
type change struct {
	def     Definition
	et      *ent.EventType // nil: create
	docs    bool           // description, example or schema differ
	archive *bool          // the archived state changes to this
}

type importPlan struct {
	catalogID string
	changes   []change
	// archive are the existing types the list leaves out that
	// ArchiveMissing archives.
	archive   []*ent.EventType
	unchanged int
}

func (c *Catalog) plan(ctx context.Context, tx *ent.Client, catalogID string, existing []*ent.EventType, defs []Definition, opts ImportOptions) (*importPlan, error) {
	byName := make(map[string]*ent.EventType, len(existing))
	for _, et := range existing {
		byName[et.Name] = et
	}
	p := &importPlan{catalogID: catalogID}
	var shared map[string]bool // an app's catalog's types, which its own may not redefine
	if catalogID == "" {
		v, _ := tenant.FromContext(ctx)
		var err error
		if shared, err = sharedNames(ctx, tx, v.AppID); err != nil {
			return nil, err
		}
	}
	var errs fault.List
	creates := 0
	for i, d := range defs {
		et := byName[d.Name]
		if et == nil {
			if shared[d.Name] {
				errs.Add(shadowing(fmt.Sprintf("input.eventTypes[%d].name", i), d.Name))
				continue
			}
			p.changes = append(p.changes, change{def: d})
			creates++
			continue
		}
		ch := change{def: d, et: et}
		ch.docs = et.Description != d.Description || !sameJSON(et.Example, d.Example) || !sameJSON(et.JSONSchema, d.JSONSchema)
		if archived := et.ArchivedAt != nil; archived != d.Archived {
			ch.archive = &d.Archived
		}
		if !ch.docs && ch.archive == nil {
			p.unchanged++
			continue
		}
		p.changes = append(p.changes, ch)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	if opts.ArchiveMissing {
		listed := make(map[string]bool, len(defs))
		for _, d := range defs {
			listed[d.Name] = true
		}
		for _, et := range existing {
			if !listed[et.Name] && !IsSystem(et.Name) && et.ArchivedAt == nil {
				p.archive = append(p.archive, et)
			}
		}
	}
	if creates > 0 {
		if catalogID != "" {
			if err := checkSharedRoom(ctx, tx, catalogID, creates); err != nil {
				return nil, err
			}
		} else {
			v, _ := tenant.FromContext(ctx)
			if err := quota.Check(ctx, tx, v.AppID, quota.EventTypes, creates, time.Now()); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

func (p *importPlan) summarize(res *ImportResult) {
	for _, ch := range p.changes {
		switch {
		case ch.et == nil:
			res.Created = append(res.Created, ch.def.Name)
			continue
		case ch.docs:
			res.Updated = append(res.Updated, ch.def.Name)
		}
		if ch.archive != nil && *ch.archive {
			res.Archived = append(res.Archived, ch.def.Name)
		} else if ch.archive != nil {
			res.Unarchived = append(res.Unarchived, ch.def.Name)
		}
	}
	for _, et := range p.archive {
		res.Archived = append(res.Archived, et.Name)
	}
	res.Unchanged = p.unchanged
	for _, l := range []*[]string{&res.Created, &res.Updated, &res.Archived, &res.Unarchived} {
		if *l == nil {
			*l = []string{}
		}
		slices.Sort(*l)
	}
}

// apply writes the plan: ctx is the viewer's for an app's own types, a
// system one for a shared catalog's.
func (p *importPlan) apply(ctx context.Context, tx *ent.Client) error {
	now := time.Now().UTC()
	var creates []*ent.EventTypeCreate
	for _, ch := range p.changes {
		if ch.et == nil {
			create := tx.EventType.Create()
			if p.catalogID != "" {
				create.SetCatalogID(p.catalogID)
			}
			d := ch.def
			d.Example, d.JSONSchema = compact(d.Example), compact(d.JSONSchema)
			creates = append(creates, createType(create, d))
			continue
		}
		u := tx.EventType.UpdateOneID(ch.et.ID)
		if ch.docs {
			u.SetDescription(ch.def.Description)
			setDocs(u, compact(ch.def.Example), compact(ch.def.JSONSchema))
		}
		if ch.archive != nil && *ch.archive {
			u.SetArchivedAt(now)
		} else if ch.archive != nil {
			u.ClearArchivedAt()
		}
		if err := u.Exec(ctx); err != nil {
			return fmt.Errorf("update event type %s: %w", ch.def.Name, err)
		}
	}
	for _, et := range p.archive {
		if err := tx.EventType.UpdateOneID(et.ID).SetArchivedAt(now).Exec(ctx); err != nil {
			return fmt.Errorf("archive event type %s: %w", et.Name, err)
		}
	}
	if p.catalogID == "" && len(creates) > 0 {
		var names []string
		for _, ch := range p.changes {
			if ch.et == nil {
				names = append(names, ch.def.Name)
			}
		}
		v, _ := tenant.FromContext(ctx)
		if err := dropCopies(ctx, tx, v.AppID, names...); err != nil {
			return err
		}
	}
	// In batches: a bulk insert's statement has a bounded number of
	// parameters.
	for len(creates) > 0 {
		n := min(len(creates), 100)
		if err := tx.EventType.CreateBulk(creates[:n]...).Exec(ctx); err != nil {
			return fmt.Errorf("create event types: %w", err)
		}
		creates = creates[n:]
	}
	return nil
}

// sameJSON reports whether two stored or submitted JSON documents are the
// same, whatever their whitespace; absent and null are the same.
func sameJSON(a, b json.RawMessage) bool {
	if !present(a) || !present(b) {
		return present(a) == present(b)
	}
	return bytes.Equal(compact(a), compact(b))
}

// compact removes the insignificant whitespace of a JSON document (nil for
// none); a document that does not compact is returned as it is.
func compact(raw json.RawMessage) json.RawMessage {
	if !present(raw) {
		return nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

// DefinitionOf returns an event type as a catalog file holds it.
func DefinitionOf(et *ent.EventType) Definition {
	return Definition{
		Name:        et.Name,
		Description: et.Description,
		Example:     orNil(et.Example),
		JSONSchema:  orNil(et.JSONSchema),
		Archived:    et.ArchivedAt != nil,
	}
}
