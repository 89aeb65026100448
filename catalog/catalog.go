// Package catalog manages each app's event type catalog: the built-in types
// seeded for every app, the app's own types with their example payloads and
// JSON Schemas, and the checks that publishing and subscribing rely on.
package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/quota"
	"github.com/heraldhq/herald/tenant"
	"github.com/heraldhq/herald/webhook"
)

// Catalog reads and changes event types. It caches each app's catalog, with
// compiled schemas, for publishing; changes made through it take effect at
// once, changes made by another process within the cache TTL.
type Catalog struct {
	client *ent.Client
	ttl    time.Duration

	mu   sync.Mutex
	apps map[string]*appTypes
	// gen counts invalidations. A load caches what it read only if gen
	// did not change while it read: otherwise it may have read the
	// catalog as it was before the change that invalidated it.
	gen uint64
	// announce, if set, tells other processes about changes.
	announce func(appID string)
}

// AnnounceChanges makes the catalog tell other processes sharing the
// database about every change of an app's catalog, through f; they call
// Invalidate.
func (c *Catalog) AnnounceChanges(f func(appID string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.announce = f
}

// Changed invalidates an app's cached catalog after a change made here,
// and tells the other processes.
func (c *Catalog) Changed(appID string) {
	c.Invalidate(appID)
	c.mu.Lock()
	announce := c.announce
	c.mu.Unlock()
	if announce != nil {
		announce(appID)
	}
}

// InvalidateAll drops every app's cached catalog: changes by other
// processes may have been missed.
func (c *Catalog) InvalidateAll() {
	c.mu.Lock()
	c.gen++
	clear(c.apps)
	c.mu.Unlock()
}

type appTypes struct {
	acceptUnknown bool
	types         map[string]*typeInfo
	expires       time.Time
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
	return &Catalog{client: client, ttl: ttl, apps: make(map[string]*appTypes)}
}

// Seed adds the built-in event types missing from the app's catalog. client
// may be a transactional client.
func Seed(ctx context.Context, client *ent.Client, appID string) error {
	ctx = tenant.System(ctx)
	have, err := client.EventType.Query().Where(eventtype.AppID(appID)).Select(eventtype.FieldName).Strings(ctx)
	if err != nil {
		return fmt.Errorf("seed event types of app %s: %w", appID, err)
	}
	exists := make(map[string]bool, len(have))
	for _, n := range have {
		exists[n] = true
	}
	var creates []*ent.EventTypeCreate
	for _, b := range Builtins() {
		if exists[b.Name] {
			continue
		}
		creates = append(creates, client.EventType.Create().
			SetAppID(appID).
			SetName(b.Name).
			SetDescription(b.Description).
			SetExample(b.Example).
			SetBuiltIn(true))
	}
	if len(creates) == 0 {
		return nil
	}
	if err := client.EventType.CreateBulk(creates...).Exec(ctx); err != nil {
		return fmt.Errorf("seed event types of app %s: %w", appID, err)
	}
	return nil
}

// Invalidate drops the cached catalog of an app, and keeps loads in flight
// from caching what they read before the change.
func (c *Catalog) Invalidate(appID string) {
	c.mu.Lock()
	c.gen++
	delete(c.apps, appID)
	c.mu.Unlock()
}

func (c *Catalog) load(ctx context.Context, appID string) (*appTypes, error) {
	now := time.Now()
	c.mu.Lock()
	a := c.apps[appID]
	gen := c.gen
	c.mu.Unlock()
	if a != nil && now.Before(a.expires) {
		return a, nil
	}
	ctx = tenant.System(ctx)
	ap, err := c.client.App.Query().Where(app.ID(appID)).Only(ctx)
	if err != nil {
		return nil, fmt.Errorf("load app %s: %w", appID, err)
	}
	ets, err := c.client.EventType.Query().Where(eventtype.AppID(appID)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("load event types of app %s: %w", appID, err)
	}
	a = &appTypes{acceptUnknown: ap.AcceptUnknownEventTypes, types: make(map[string]*typeInfo, len(ets)), expires: now.Add(c.ttl)}
	for _, et := range ets {
		ti := &typeInfo{archived: et.ArchivedAt != nil}
		if present(et.JSONSchema) {
			s, err := compileSchema(et.JSONSchema)
			if err != nil {
				// Stored by an older version with looser rules: refuse
				// this type until its schema is fixed, not the whole app.
				ti.schemaErr = err
			}
			ti.schema = s
		}
		a.types[et.Name] = ti
	}
	c.mu.Lock()
	if c.gen == gen {
		c.apps[appID] = a
	}
	c.mu.Unlock()
	return a, nil
}

// CheckPublish reports whether an app may publish an event of the type with
// the payload: the type must be in the catalog and not archived (unless the
// app accepts unknown types), must not be one Herald reserves, and the
// payload must be a JSON object satisfying the type's schema. Faults name
// the fields "eventType" and "payload".
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
	a, err := c.load(ctx, appID)
	if err != nil {
		return err
	}
	ti, ok := a.types[eventType]
	switch {
	case !ok && a.acceptUnknown:
		return nil
	case !ok:
		return fault.Invalid("eventType", "unknown event type %q: add it with createEventType, or publish one of the types listed by the eventTypes query", eventType)
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
// in the app's catalog and not archived, unless the app accepts unknown
// types. field names the list in faults.
func (c *Catalog) CheckSubscribable(ctx context.Context, appID, field string, patterns []string) error {
	a, err := c.load(ctx, appID)
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
		ti, ok := a.types[p]
		switch {
		case !ok:
			return fault.Invalid(field, "unknown event type %q: add it with createEventType first, or use a pattern such as %q", p, prefixPattern(p))
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
	Name        string
	Description string
	Example     json.RawMessage
	JSONSchema  json.RawMessage
}

// Create adds an event type to the viewer's app.
func (c *Catalog) Create(ctx context.Context, in CreateInput) (*ent.EventType, error) {
	v, ok := tenant.FromContext(ctx)
	if !ok {
		return nil, tenant.ErrNoViewer
	}
	if err := webhook.CheckEventTypeName("input.name", in.Name); err != nil {
		return nil, err
	}
	if strings.HasPrefix(in.Name, ReservedPrefix) {
		return nil, fault.Invalid("input.name", "the webhook.* namespace is reserved for Herald's own events")
	}
	if err := checkDocs("input.", in.Description, in.Example, in.JSONSchema); err != nil {
		return nil, err
	}
	var et *ent.EventType
	err := db.WithTx(ctx, c.client, func(tx *ent.Client) error {
		if err := quota.Lock(ctx, tx, v.AppID); err != nil {
			return err
		}
		if err := quota.Check(ctx, tx, v.AppID, quota.EventTypes, 1, time.Now()); err != nil {
			return err
		}
		create := tx.EventType.Create().
			SetName(in.Name).
			SetDescription(in.Description)
		if present(in.Example) {
			create.SetExample(in.Example)
		}
		if present(in.JSONSchema) {
			create.SetJSONSchema(in.JSONSchema)
		}
		var err error
		if et, err = create.Save(ctx); err != nil {
			return err
		}
		fields := map[string]any{"name": in.Name, "description": in.Description}
		if present(in.Example) {
			fields["example"] = in.Example
		}
		if present(in.JSONSchema) {
			fields["jsonSchema"] = in.JSONSchema
		}
		return audit.Record(ctx, tx, audit.Change{TargetType: "EventType", TargetID: et.ID, Fields: fields}, et.CreatedAt)
	})
	if _, ok := fault.As(err); ok {
		return nil, err
	}
	if ent.IsConstraintError(err) {
		return nil, fault.Conflictf("EVENT_TYPE_EXISTS", "event type %q already exists in this app; use updateEventType to change it", in.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("create event type %s: %w", in.Name, err)
	}
	c.Changed(v.AppID)
	return et, nil
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

// Update changes an event type of the viewer's app.
func (c *Catalog) Update(ctx context.Context, id string, in UpdateInput) (*ent.EventType, error) {
	et, err := c.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if IsSystem(et.Name) {
		return nil, fault.Forbiddenf("%q is a system event type: Herald defines its payload, so it cannot be changed", et.Name)
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
		u := tx.EventType.UpdateOneID(id).SetDescription(desc)
		fields := map[string]any{}
		if desc != et.Description {
			fields["description"] = desc
		}
		if !present(example) {
			u.ClearExample()
		} else {
			u.SetExample(example)
		}
		if !bytes.Equal(example, orNil(et.Example)) {
			fields["example"] = example
		}
		if !present(schema) {
			u.ClearJSONSchema()
		} else {
			u.SetJSONSchema(schema)
		}
		if !bytes.Equal(schema, orNil(et.JSONSchema)) {
			fields["jsonSchema"] = schema
		}
		fields["name"] = et.Name
		var err error
		et, err = u.Save(ctx)
		return audit.Change{TargetType: "EventType", TargetID: id, Fields: fields}, err
	})
	if err != nil {
		return nil, fmt.Errorf("update event type %s: %w", id, err)
	}
	c.Changed(et.AppID)
	return et.Unwrap(), nil
}

// SetArchived archives or unarchives an event type of the viewer's app.
// Archived types cannot be published; endpoints keep their subscriptions.
func (c *Catalog) SetArchived(ctx context.Context, id string, archived bool) (*ent.EventType, error) {
	et, err := c.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if IsSystem(et.Name) {
		return nil, fault.Forbiddenf("%q is a system event type and cannot be archived", et.Name)
	}
	updated := false
	err = audit.Tx(ctx, c.client, func(tx *ent.Client) (audit.Change, error) {
		change := audit.Change{TargetType: "EventType", TargetID: id, Fields: map[string]any{"name": et.Name, "archived": archived}}
		if (et.ArchivedAt != nil) == archived {
			return change, nil // as asked already: recorded, nothing changed
		}
		updated = true
		u := tx.EventType.UpdateOneID(id)
		if archived {
			u.SetArchivedAt(time.Now().UTC())
		} else {
			u.ClearArchivedAt()
		}
		var err error
		et, err = u.Save(ctx)
		return change, err
	})
	if err != nil {
		return nil, fmt.Errorf("archive event type %s: %w", id, err)
	}
	c.Changed(et.AppID)
	if updated {
		et = et.Unwrap()
	}
	return et, nil
}

func (c *Catalog) get(ctx context.Context, id string) (*ent.EventType, error) {
	et, err := c.client.EventType.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, fault.NotFoundf("event type %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get event type %s: %w", id, err)
	}
	return et, nil
}

// checkDocs validates the documentation of an event type: the schema must
// compile and the example must satisfy it.
func checkDocs(prefix, description string, example, schema json.RawMessage) error {
	if len(description) > 4096 {
		return fault.Invalid(prefix+"description", "must be at most 4096 characters")
	}
	if len(example) > 64<<10 {
		return fault.Invalid(prefix+"example", "must be at most 64 KiB")
	}
	if len(schema) > 64<<10 {
		return fault.Invalid(prefix+"jsonSchema", "must be at most 64 KiB")
	}
	if !present(schema) {
		return nil
	}
	s, err := compileSchema(schema)
	if err != nil {
		return fault.Invalid(prefix+"jsonSchema", "is not a usable JSON Schema: %v", err)
	}
	if !present(example) {
		return nil
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(example))
	if err != nil {
		return fault.Invalid(prefix+"example", "is not valid JSON: %v", err)
	}
	if err := s.Validate(doc); err != nil {
		return fault.Invalid(prefix+"example", "does not match jsonSchema: %s", schemaMessage(err))
	}
	return nil
}

// noLoader refuses to load referenced schemas: a schema may only refer to
// itself, so compiling one never reads files or the network.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external $ref %q is not allowed: inline the referenced schema under $defs", url)
}

func compileSchema(raw json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, ok := doc.(map[string]any); !ok {
		if _, isBool := doc.(bool); !isBool {
			return nil, errors.New("a schema must be a JSON object")
		}
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(noLoader{})
	// A hierarchical location, so that a relative $ref resolves to an
	// external URL (which noLoader refuses) instead of back to the schema.
	const loc = "https://herald.invalid/event-type-schema.json"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, err
	}
	s, err := c.Compile(loc)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// schemaMessage flattens a validation error into one line.
func schemaMessage(err error) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	out := ve.BasicOutput()
	var parts []string
	for _, e := range out.Errors {
		if e.Error == nil {
			continue
		}
		loc := e.InstanceLocation
		if loc == "" {
			loc = "/"
		}
		parts = append(parts, fmt.Sprintf("at %s: %s", loc, e.Error.String()))
		if len(parts) == 3 {
			break
		}
	}
	if len(parts) == 0 {
		return strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	return strings.Join(parts, "; ")
}

// present reports whether a stored or submitted JSON document is set: not
// empty and not null.
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}

// orNil returns raw, or nil if it is not present.
func orNil(raw json.RawMessage) json.RawMessage {
	if !present(raw) {
		return nil
	}
	return raw
}
