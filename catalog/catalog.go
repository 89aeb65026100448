// Package catalog manages event-type catalogs and the checks that
// publishing and subscribing rely on.
//
// A platform defines its event types once, in a shared catalog: every
// installation has a default one, and an admin may make more for groups
// of apps (staging and production, say) and put apps in them. Each app
// publishes from its catalog's types and may add types of its own; an
// app's own type takes the place of a shared type of the same name in that
// app's view. Nothing but Herald's system types (test.ping, webhook.*) is
// in a catalog until someone adds it: with createEventType,
// importEventTypes, or a catalog file (herald catalog import; the
// repository's examples/catalog.json is one).
package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/heraldhq/herald/audit"
	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/app"
	"github.com/heraldhq/herald/ent/eventtype"
	"github.com/heraldhq/herald/ent/predicate"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/ids"
	"github.com/heraldhq/herald/quota"
	"github.com/heraldhq/herald/tenant"
	"github.com/heraldhq/herald/webhook"
)

// Catalog reads and changes event types and catalogs. For publishing it
// caches each app's view: the app's settings and own types, and, once for
// all the apps that share it, each shared catalog's types with their
// compiled schemas. Changes made through it take effect at once, changes
// made by another process within the cache TTL (or at once, with
// AnnounceChanges).
type Catalog struct {
	client *ent.Client
	ttl    time.Duration

	mu     sync.Mutex
	apps   map[string]*appView // by app ID
	shared map[string]*typeSet // by catalog ID
	// gen counts invalidations. A load caches what it read only if gen
	// did not change while it read: otherwise it may have read the
	// catalog as it was before the change that invalidated it.
	gen uint64
	// announce, if set, tells other processes about changes.
	announce func(id string)
}

// appView is what publishing needs to know about one app.
type appView struct {
	acceptUnknown bool
	catalogID     string
	own           map[string]*typeInfo
	expires       time.Time
}

// typeSet is a shared catalog's types.
type typeSet struct {
	types   map[string]*typeInfo
	expires time.Time
}

type typeInfo struct {
	archived  bool
	schema    *jsonschema.Schema // nil: no schema
	schemaErr error              // the stored schema does not compile
}

// New returns a Catalog over client. ttl bounds how long changes made by
// other processes go unnoticed; 0 means 5 seconds.
func New(client *ent.Client, ttl time.Duration) *Catalog {
	if ttl <= 0 {
		ttl = 5 * time.Second
	}
	return &Catalog{client: client, ttl: ttl, apps: make(map[string]*appView), shared: make(map[string]*typeSet)}
}

// AnnounceChanges makes the catalog tell other processes sharing the
// database about every change of an app's settings or types, or of a
// shared catalog's types, through f (with the app's or the catalog's ID);
// they call Invalidate.
func (c *Catalog) AnnounceChanges(f func(id string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.announce = f
}

// Changed invalidates the cached view of an app, or a shared catalog's
// types, after a change made here (id is the app's or the catalog's), and
// tells the other processes.
func (c *Catalog) Changed(id string) {
	c.Invalidate(id)
	c.mu.Lock()
	announce := c.announce
	c.mu.Unlock()
	if announce != nil {
		announce(id)
	}
}

// Invalidate drops the cached view of an app, or the cached types of a
// shared catalog (id is a catalog ID), and keeps loads in flight from
// caching what they read before the change.
func (c *Catalog) Invalidate(id string) {
	c.mu.Lock()
	c.gen++
	if ids.Prefix(id) == ids.Catalog {
		delete(c.shared, id)
	} else {
		delete(c.apps, id)
	}
	c.mu.Unlock()
}

// InvalidateAll drops everything cached: changes by other processes may
// have been missed.
func (c *Catalog) InvalidateAll() {
	c.mu.Lock()
	c.gen++
	clear(c.apps)
	clear(c.shared)
	c.mu.Unlock()
}

// load returns an app's view and its catalog's types. With both cached it
// reads nothing; otherwise it reads the app (if needed) and then, in one
// query, the app's own types and its catalog's, whichever are missing.
func (c *Catalog) load(ctx context.Context, appID string) (*appView, *typeSet, error) {
	now := time.Now()
	c.mu.Lock()
	gen := c.gen
	a := c.apps[appID]
	if a != nil && !now.Before(a.expires) {
		a = nil
	}
	var s *typeSet
	if a != nil {
		s = c.fresh(a.catalogID, now)
	}
	c.mu.Unlock()
	if a != nil && s != nil {
		return a, s, nil
	}
	ctx = tenant.System(ctx)
	if a == nil {
		ap, err := c.client.App.Query().Where(app.ID(appID)).
			Select(app.FieldAcceptUnknownEventTypes, app.FieldCatalogID).Only(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("load app %s: %w", appID, err)
		}
		catalogID := ap.CatalogID
		if catalogID == "" {
			// A row written by a herald from before shared catalogs.
			if catalogID, err = defaultID(ctx, c.client); err != nil {
				return nil, nil, err
			}
		}
		a = &appView{acceptUnknown: ap.AcceptUnknownEventTypes, catalogID: catalogID, expires: now.Add(c.ttl)}
		c.mu.Lock()
		s = c.fresh(catalogID, now)
		c.mu.Unlock()
	}
	var which []predicate.EventType
	if a.own == nil {
		which = append(which, OwnTypes(appID))
	}
	if s == nil {
		which = append(which, eventtype.CatalogID(a.catalogID))
	}
	if len(which) > 0 {
		ets, err := c.client.EventType.Query().Where(eventtype.Or(which...)).All(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("load event types of app %s: %w", appID, err)
		}
		own := a.own == nil
		if own {
			a.own = make(map[string]*typeInfo)
		}
		if s == nil {
			s = &typeSet{types: make(map[string]*typeInfo, len(ets)), expires: now.Add(c.ttl)}
			defer func() { c.cacheShared(a.catalogID, s, gen) }()
		}
		for _, et := range ets {
			switch {
			case et.AppID != "" && own:
				a.own[et.Name] = info(et)
			case et.CatalogID != "":
				s.types[et.Name] = info(et)
			}
		}
	}
	c.mu.Lock()
	if c.gen == gen {
		c.apps[appID] = a
	}
	c.mu.Unlock()
	return a, s, nil
}

// fresh returns a shared catalog's cached types if they have not expired.
// c.mu is held.
func (c *Catalog) fresh(catalogID string, now time.Time) *typeSet {
	s := c.shared[catalogID]
	if s != nil && !now.Before(s.expires) {
		return nil
	}
	return s
}

func (c *Catalog) cacheShared(catalogID string, s *typeSet, gen uint64) {
	c.mu.Lock()
	if c.gen == gen {
		c.shared[catalogID] = s
	}
	c.mu.Unlock()
}

func info(et *ent.EventType) *typeInfo {
	ti := &typeInfo{archived: et.ArchivedAt != nil}
	if present(et.JSONSchema) {
		s, err := compileSchema(et.JSONSchema)
		if err != nil {
			// Stored by an older version with looser rules: refuse this
			// type until its schema is fixed, not the whole catalog.
			ti.schemaErr = err
		}
		ti.schema = s
	}
	return ti
}

// lookup finds a type in an app's view: its own, else its catalog's.
func lookup(a *appView, s *typeSet, name string) (*typeInfo, bool) {
	if ti, ok := a.own[name]; ok {
		return ti, true
	}
	ti, ok := s.types[name]
	return ti, ok
}

// CheckPublish reports whether an app may publish an event of the type with
// the payload: the type must be in the app's view of the catalog (its
// catalog's types and its own) and not archived, unless the app accepts
// unknown types; it must not be one Herald reserves; and the payload must
// be a JSON object satisfying the type's schema. Faults name the fields
// "eventType" and "payload".
func (c *Catalog) CheckPublish(ctx context.Context, appID, eventType string, payload json.RawMessage) error {
	if err := webhook.CheckEventTypeName("eventType", eventType); err != nil {
		return err
	}
	if strings.HasPrefix(eventType, ReservedPrefix) {
		return fault.Invalid("eventType", "%q is reserved: Herald publishes webhook.* events itself", eventType)
	}
	p := bytes.TrimLeft(payload, " \t\r\n")
	if len(p) == 0 || p[0] != '{' {
		return fault.Invalid("payload", "must be a JSON object, such as {\"orderId\": \"ord_1042\"}")
	}
	a, s, err := c.load(ctx, appID)
	if err != nil {
		return err
	}
	ti, ok := lookup(a, s, eventType)
	switch {
	case !ok && a.acceptUnknown:
		return nil
	case !ok:
		return fault.Invalid("eventType", "unknown event type %q: add it to the catalog with createEventType or importEventTypes (herald catalog import), or publish one of the types the eventTypes query lists", eventType)
	case ti.archived:
		return fault.Invalid("eventType", "event type %q is archived: unarchive it with unarchiveEventType to publish it again", eventType)
	case ti.schemaErr != nil:
		return fault.Invalid("eventType", "the JSON Schema of event type %q is no longer usable (%v): fix it with updateEventType", eventType, ti.schemaErr)
	case ti.schema == nil:
		return nil
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
	if err != nil {
		return fault.Invalid("payload", "is not valid JSON: %v", err)
	}
	if err := ti.schema.Validate(doc); err != nil {
		return fault.Invalid("payload", "does not match the JSON Schema of %q: %s", eventType, schemaMessage(err))
	}
	return nil
}

// CheckSubscribable reports whether every exact event type among patterns is
// in the app's view of the catalog and not archived, unless the app
// accepts unknown types. field names the list in faults.
func (c *Catalog) CheckSubscribable(ctx context.Context, appID, field string, patterns []string) error {
	a, s, err := c.load(ctx, appID)
	if err != nil {
		return err
	}
	if a.acceptUnknown {
		return nil
	}
	for _, p := range patterns {
		if webhook.IsWildcard(p) {
			continue
		}
		ti, ok := lookup(a, s, p)
		switch {
		case !ok:
			return fault.Invalid(field, "unknown event type %q: add it to the catalog first, or use a pattern such as %q", p, prefixPattern(p))
		case ti.archived:
			return fault.Invalid(field, "event type %q is archived", p)
		}
	}
	return nil
}

func prefixPattern(name string) string {
	if i := strings.IndexByte(name, '.'); i > 0 {
		return name[:i] + ".*"
	}
	return "*"
}

// CreateInput describes a new event type.
type CreateInput struct {
	// CatalogID is the shared catalog to add it to (admin keys only); ""
	// makes it one of the viewer's app's own types.
	CatalogID   string
	Name        string
	Description string
	Example     json.RawMessage
	JSONSchema  json.RawMessage
}

// Create adds an event type to a shared catalog, or to the viewer's app's
// own types.
func (c *Catalog) Create(ctx context.Context, in CreateInput) (*ent.EventType, error) {
	v, ok := tenant.FromContext(ctx)
	if !ok {
		return nil, tenant.ErrNoViewer
	}
	// Every invalid field at once, so that a form can show them together.
	var errs fault.List
	for _, err := range []error{checkName("input.name", in.Name), checkDocs("input.", in.Description, in.Example, in.JSONSchema)} {
		if err != nil && !errs.Add(err) {
			return nil, err
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	def := Definition{Name: in.Name, Description: in.Description, Example: in.Example, JSONSchema: in.JSONSchema}
	if in.CatalogID != "" {
		return c.createShared(ctx, v, in.CatalogID, def)
	}
	var et *ent.EventType
	err := db.WithTx(ctx, c.client, func(tx *ent.Client) error {
		if err := quota.Lock(ctx, tx, v.AppID); err != nil {
			return err
		}
		if err := refuseShadowing(ctx, tx, v.AppID, "input.name", in.Name); err != nil {
			return err
		}
		if err := quota.Check(ctx, tx, v.AppID, quota.EventTypes, 1, time.Now()); err != nil {
			return err
		}
		if err := dropCopies(ctx, tx, v.AppID, in.Name); err != nil {
			return err
		}
		var err error
		if et, err = createType(tx.EventType.Create(), def).Save(ctx); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Change{TargetType: "EventType", TargetID: et.ID, Fields: createdFields(def)}, et.CreatedAt)
	})
	if _, ok := fault.As(err); ok {
		return nil, err
	}
	if ent.IsConstraintError(err) {
		return nil, typeNameTaken(fault.Conflictf("EVENT_TYPE_EXISTS", "event type %q already exists in this app; use updateEventType to change it", in.Name))
	}
	if err != nil {
		return nil, fmt.Errorf("create event type %s: %w", in.Name, err)
	}
	c.Changed(v.AppID)
	return et, nil
}

func (c *Catalog) createShared(ctx context.Context, v tenant.Viewer, catalogID string, def Definition) (*ent.EventType, error) {
	if !v.Admin {
		return nil, fault.Forbiddenf("only admin keys add types to a shared catalog: leave catalogId out to add one of this app's own types")
	}
	sys := tenant.System(ctx)
	var et *ent.EventType
	err := db.WithTx(sys, c.client, func(tx *ent.Client) error {
		if err := lockCatalog(sys, tx, "input.catalogId", catalogID); err != nil {
			return err
		}
		if err := checkSharedRoom(sys, tx, catalogID, 1); err != nil {
			return err
		}
		var err error
		if et, err = createType(tx.EventType.Create().SetCatalogID(catalogID), def).Save(sys); err != nil {
			return err
		}
		fields := createdFields(def)
		fields["catalogId"] = catalogID
		return audit.Record(ctx, tx, audit.Change{TargetType: "EventType", TargetID: et.ID, Fields: fields}, et.CreatedAt)
	})
	if _, ok := fault.As(err); ok {
		return nil, err
	}
	if ent.IsConstraintError(err) {
		return nil, typeNameTaken(fault.Conflictf("EVENT_TYPE_EXISTS", "event type %q is already in the catalog; use updateEventType to change it", def.Name))
	}
	if err != nil {
		return nil, fmt.Errorf("create event type %s in catalog %s: %w", def.Name, catalogID, err)
	}
	c.Changed(catalogID)
	return et, nil
}

// createdFields describes a new type for its audit record.
func createdFields(def Definition) map[string]any {
	fields := map[string]any{"name": def.Name, "description": def.Description}
	if present(def.Example) {
		fields["example"] = def.Example
	}
	if present(def.JSONSchema) {
		fields["jsonSchema"] = def.JSONSchema
	}
	return fields
}

// typeNameTaken names input.name as the field at fault of a conflict over a
// new type's name, so that a form shows it there.
func typeNameTaken(e *fault.Error) *fault.Error {
	e.Field = "input.name"
	return e
}

// createType sets a new type's fields from a definition.
func createType(create *ent.EventTypeCreate, def Definition) *ent.EventTypeCreate {
	create.SetName(def.Name).SetDescription(def.Description)
	if present(def.Example) {
		create.SetExample(def.Example)
	}
	if present(def.JSONSchema) {
		create.SetJSONSchema(def.JSONSchema)
	}
	if def.Archived {
		create.SetArchivedAt(time.Now().UTC())
	}
	return create
}

// checkName refuses names that are not valid or that Herald keeps for
// itself.
func checkName(field, name string) error {
	if err := webhook.CheckEventTypeName(field, name); err != nil {
		return err
	}
	if strings.HasPrefix(name, ReservedPrefix) {
		return fault.Invalid(field, "the webhook.* namespace is reserved for Herald's own events")
	}
	if IsSystem(name) {
		return fault.Invalid(field, "%q is one of Herald's system types, which every catalog has", name)
	}
	return nil
}

// UpdateInput describes changes to an event type. Nil fields stay as they
// are; Clear* fields remove the example or schema.
type UpdateInput struct {
	Description  *string
	Example      json.RawMessage
	ClearExample bool
	JSONSchema   json.RawMessage
	ClearSchema  bool
}

// Update changes one of the viewer's app's own types, or (admin keys) a
// type of a shared catalog.
func (c *Catalog) Update(ctx context.Context, id string, in UpdateInput) (*ent.EventType, error) {
	et, err := c.writable(ctx, id, "changed")
	if err != nil {
		return nil, err
	}
	desc := et.Description
	if in.Description != nil {
		desc = *in.Description
	}
	example, schema := orNil(et.Example), orNil(et.JSONSchema)
	if in.Example != nil || in.ClearExample {
		example = in.Example
	}
	if in.JSONSchema != nil || in.ClearSchema {
		schema = in.JSONSchema
	}
	if err := checkDocs("input.", desc, example, schema); err != nil {
		return nil, err
	}
	err = audit.Tx(ctx, c.client, func(tx *ent.Client) (audit.Change, error) {
		u := tx.EventType.UpdateOneID(et.ID).SetDescription(desc)
		setDocs(u, example, schema)
		fields := map[string]any{"name": et.Name}
		if desc != et.Description {
			fields["description"] = desc
		}
		if !bytes.Equal(example, orNil(et.Example)) {
			fields["example"] = example
		}
		if !bytes.Equal(schema, orNil(et.JSONSchema)) {
			fields["jsonSchema"] = schema
		}
		var err error
		et, err = u.Save(writeContext(ctx, et))
		return audit.Change{TargetType: "EventType", TargetID: id, Fields: fields}, err
	})
	if err != nil {
		return nil, fmt.Errorf("update event type %s: %w", id, err)
	}
	c.Changed(owner(et))
	return et.Unwrap(), nil
}

func setDocs(u *ent.EventTypeUpdateOne, example, schema json.RawMessage) {
	if !present(example) {
		u.ClearExample()
	} else {
		u.SetExample(example)
	}
	if !present(schema) {
		u.ClearJSONSchema()
	} else {
		u.SetJSONSchema(schema)
	}
}

// SetArchived archives or unarchives an event type, as Update may change
// it. Archived types cannot be published; endpoints keep their
// subscriptions.
func (c *Catalog) SetArchived(ctx context.Context, id string, archived bool) (*ent.EventType, error) {
	et, err := c.writable(ctx, id, "archived")
	if err != nil {
		return nil, err
	}
	updated := false
	err = audit.Tx(ctx, c.client, func(tx *ent.Client) (audit.Change, error) {
		change := audit.Change{TargetType: "EventType", TargetID: et.ID, Fields: map[string]any{"name": et.Name, "archived": archived}}
		if (et.ArchivedAt != nil) == archived {
			return change, nil // as asked already: recorded, nothing changed
		}
		updated = true
		u := tx.EventType.UpdateOneID(et.ID)
		if archived {
			u.SetArchivedAt(time.Now().UTC())
		} else {
			u.ClearArchivedAt()
		}
		var err error
		et, err = u.Save(writeContext(ctx, et))
		return change, err
	})
	if err != nil {
		return nil, fmt.Errorf("archive event type %s: %w", id, err)
	}
	if updated {
		c.Changed(owner(et))
		et = et.Unwrap()
	}
	return et, nil
}

// writable returns the event type id if the viewer may change it: one of
// its app's own types, or, for admin keys, a type of any shared catalog.
// Herald's system types cannot be changed.
func (c *Catalog) writable(ctx context.Context, id, what string) (*ent.EventType, error) {
	v, ok := tenant.FromContext(ctx)
	if !ok {
		return nil, tenant.ErrNoViewer
	}
	et, err := c.client.EventType.Get(ctx, id)
	if ent.IsNotFound(err) && v.Admin {
		// Admin keys manage every shared catalog, not only the one of
		// the app they act in.
		et, err = c.client.EventType.Query().Where(eventtype.ID(id), eventtype.CatalogIDNEQ("")).Only(tenant.System(ctx))
	}
	if ent.IsNotFound(err) {
		return nil, fault.NotFoundf("event type %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get event type %s: %w", id, err)
	}
	if IsSystem(et.Name) {
		return nil, fault.Forbiddenf("%q is a system event type: Herald defines it, so it cannot be %s", et.Name, what)
	}
	if et.CatalogID != "" && !v.Admin {
		return nil, fault.Forbiddenf("%q is a type of the shared catalog, which only admin keys change: ask the platform's operator, or use a type of this app's own", et.Name)
	}
	return et, nil
}

// writeContext is the context that changes et: the viewer's for an app's
// own type (the data layer keeps it in the app), a system one for a shared
// type once writable has let the admin through.
func writeContext(ctx context.Context, et *ent.EventType) context.Context {
	if et.CatalogID != "" {
		return tenant.System(ctx)
	}
	return ctx
}

// OwnTypes selects an app's own types. An app's rows marked built in are
// not among them: they are the app's copies of the types that moved to the
// shared catalog (MigrateToShared), kept for replicas of earlier releases
// that still run during an upgrade, and read by those only.
func OwnTypes(appID string) predicate.EventType {
	return eventtype.And(eventtype.AppID(appID), eventtype.BuiltIn(false))
}

// dropCopies deletes an app's copies from before shared catalogs of the
// named types, which would keep own types of those names from being
// created (an app moved to a catalog without them may add them).
func dropCopies(ctx context.Context, tx *ent.Client, appID string, names ...string) error {
	if len(names) == 0 {
		return nil
	}
	_, err := tx.EventType.Delete().Where(eventtype.AppID(appID), eventtype.BuiltIn(true), eventtype.NameIn(names...)).Exec(tenant.System(ctx))
	if err != nil {
		return fmt.Errorf("drop the app's earlier copies of %v: %w", names, err)
	}
	return nil
}

// owner is the app or catalog whose cache a change of et invalidates.
func owner(et *ent.EventType) string {
	if et.CatalogID != "" {
		return et.CatalogID
	}
	return et.AppID
}

// refuseShadowing refuses an app's own type named like a type of its
// catalog: an app adds types to its catalog, it does not redefine them.
func refuseShadowing(ctx context.Context, client *ent.Client, appID, field, name string) error {
	ctx = tenant.System(ctx)
	catalogID, err := appCatalogID(ctx, client, appID)
	if err != nil {
		return err
	}
	n, err := client.EventType.Query().Where(eventtype.CatalogID(catalogID), eventtype.Name(name)).Count(ctx)
	if err != nil {
		return fmt.Errorf("look up event type %s: %w", name, err)
	}
	if n > 0 {
		return shadowing(field, name)
	}
	return nil
}

// sharedNames returns the names of the types of an app's catalog.
func sharedNames(ctx context.Context, client *ent.Client, appID string) (map[string]bool, error) {
	ctx = tenant.System(ctx)
	catalogID, err := appCatalogID(ctx, client, appID)
	if err != nil {
		return nil, err
	}
	names, err := client.EventType.Query().Where(eventtype.CatalogID(catalogID)).Select(eventtype.FieldName).Strings(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the types of catalog %s: %w", catalogID, err)
	}
	out := make(map[string]bool, len(names))
	for _, n := range names {
		out[n] = true
	}
	return out, nil
}

func shadowing(field, name string) *fault.Error {
	return &fault.Error{Code: fault.Conflict, Field: field, Reason: "EVENT_TYPE_EXISTS",
		Message: fmt.Sprintf("event type %q is already in the shared catalog, which this app publishes from: use it as it is", name)}
}
