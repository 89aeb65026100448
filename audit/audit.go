// Package audit records every change made through the API: who made it
// (an admin key, an app's key, a customer's portal session), what it was
// (the mutation, its target, the fields it changed, a secret's value
// written as "changed"), when, and from where (remote address and request
// ID).
//
// A record is written in the transaction of the change it describes, so
// that a change without its record cannot be committed: the API's field
// middleware marks the context of each mutation (Begin), and the service
// that makes the change writes the record with Record (through ent) or
// takes it as a Row to insert with its own statements (Take, for the
// delivery engine's storage drivers). Each mutation writes exactly one
// record; a mutation that may change nothing (a reveal, a replay that
// found nothing) gets its record from the middleware when the service
// wrote none (see Mode).
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/auditrecord"
	"github.com/heraldhq/herald/ids"
	"github.com/heraldhq/herald/tenant"
)

// Change is what one mutation changed.
type Change struct {
	// AppID is the app the change belongs to ("": the caller's).
	AppID string
	// TargetType is the kind of object changed ("Endpoint") and TargetID
	// the object (the first, when a mutation changes several).
	TargetType string
	TargetID   string
	// Fields are what changed, field by field, as JSON values; secrets
	// must already read secret.Changed.
	Fields map[string]any
}

// Origin is where a request came from.
type Origin struct {
	RemoteAddr string
	RequestID  string
}

type originKey struct{}

// WithOrigin returns a copy of ctx that carries where its request came
// from, for the records of the mutations it runs.
func WithOrigin(ctx context.Context, o Origin) context.Context {
	return context.WithValue(ctx, originKey{}, o)
}

// OriginOf returns where ctx's request came from.
func OriginOf(ctx context.Context) Origin {
	o, _ := ctx.Value(originKey{}).(Origin)
	return o
}

// Op is one mutation of the API being audited.
type Op struct {
	// Action is the mutation's name.
	Action string

	mu      sync.Mutex
	written int
	preset  *Change
}

type opKey struct{}

// Begin returns a copy of ctx in which the changes made are those of the
// API mutation action, and the Op that counts its records.
func Begin(ctx context.Context, action string) (context.Context, *Op) {
	op := &Op{Action: action}
	return context.WithValue(ctx, opKey{}, op), op
}

func opOf(ctx context.Context) *Op {
	op, _ := ctx.Value(opKey{}).(*Op)
	return op
}

// Written returns how many records the mutation wrote.
func (op *Op) Written() int {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.written
}

// Describe sets the change a mutation's record describes when the service
// that writes it knows less than the caller (a batch whose first change
// carries the record of all of it). It does nothing outside of a mutation.
func Describe(ctx context.Context, c Change) {
	if op := opOf(ctx); op != nil {
		op.mu.Lock()
		op.preset = &c
		op.mu.Unlock()
	}
}

// Row is an audit record as stored, for statements of one's own.
type Row struct {
	ID         string
	AppID      string
	CreatedAt  time.Time
	ActorKind  string
	ActorID    string
	ActorName  string
	Action     string
	TargetType string
	TargetID   string
	// Changes is the JSON object of Change.Fields (nil: none).
	Changes    []byte
	RemoteAddr string
	RequestID  string
}

// Take returns the record of the mutation ctx runs, describing c, to be
// inserted in the transaction of the change, and counts it written. It
// returns nil outside of an API mutation (Herald's own work is not
// audited) and once the mutation has its record (a batch records its first
// change, with what Describe said of all of it).
func Take(ctx context.Context, c Change, now time.Time) *Row {
	op := opOf(ctx)
	if op == nil {
		return nil
	}
	v, ok := tenant.FromContext(ctx)
	if !ok {
		return nil
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	if op.written > 0 {
		return nil
	}
	if op.preset != nil {
		p := *op.preset
		if p.TargetID == "" {
			p.TargetID = c.TargetID
		}
		if p.TargetType == "" {
			p.TargetType = c.TargetType
		}
		if p.AppID == "" {
			p.AppID = c.AppID
		}
		c = p
	}
	op.written++
	o := OriginOf(ctx)
	row := &Row{
		ID: ids.NewAt(ids.AuditRecord, now), AppID: c.AppID, CreatedAt: now.UTC(),
		ActorKind: ActorKind(v), ActorID: v.KeyID, ActorName: v.KeyName,
		Action: op.Action, TargetType: c.TargetType, TargetID: c.TargetID,
		RemoteAddr: o.RemoteAddr, RequestID: o.RequestID,
	}
	if row.AppID == "" {
		row.AppID = v.AppID
	}
	if len(c.Fields) > 0 {
		row.Changes = encodeFields(c.Fields)
	}
	return row
}

// untake gives back a record Take counted whose transaction failed, so
// that a retried change records it again.
func untake(ctx context.Context) {
	if op := opOf(ctx); op != nil {
		op.mu.Lock()
		op.written = max(0, op.written-1)
		op.mu.Unlock()
	}
}

// Untake undoes Take (of a non-nil row) for a change that was not
// committed: the mutation has no record yet.
func Untake(ctx context.Context, r *Row) {
	if r != nil {
		untake(ctx)
	}
}

// ActorKind names the kind of credential of v as records store it.
func ActorKind(v tenant.Viewer) string {
	switch {
	case v.Portal:
		return auditrecord.ActorKindPORTAL_SESSION.String()
	case v.Admin:
		return auditrecord.ActorKindADMIN_KEY.String()
	default:
		return auditrecord.ActorKindAPI_KEY.String()
	}
}

// maxValue bounds the text of one field's value in a record, and
// maxFields the fields of one record, so that records stay small whatever
// a mutation carried (a filter, a transformation, an example payload).
const (
	maxValue  = 1024
	maxFields = 64
)

// EncodeFields returns the JSON a record stores of Change.Fields, each
// value bounded (see Take).
func EncodeFields(fields map[string]any) []byte { return encodeFields(fields) }

// encodeFields returns the JSON of a record's fields, each value at most
// maxValue bytes of JSON (longer ones are cut, as text, with a note), and
// at most maxFields of them, the first in key order. It writes what
// encoding/json writes of the fields as a map (keys sorted, HTML escaped),
// one value at a time into one buffer: a record is made for every publish.
func encodeFields(fields map[string]any) []byte {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	keys = keys[:min(len(keys), maxFields)]
	b := make([]byte, 0, 128)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		kb, _ := json.Marshal(k)
		b = append(b, kb...)
		b = append(b, ':')
		b = append(b, encodeValue(fields[k])...)
	}
	return append(b, '}')
}

// encodeValue returns the JSON of one field's value, cut to maxValue bytes.
func encodeValue(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(fmt.Sprint(v))
	}
	if len(b) > maxValue {
		s := string(b[:maxValue])
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		b, _ = json.Marshal(fmt.Sprintf("%s… (%d bytes)", s, len(b)))
	}
	return b
}

// Record writes the record of the mutation ctx runs, describing c, in tx,
// the transactional client of the change. Outside of an API mutation, and
// once the mutation has its record, it writes nothing.
func Record(ctx context.Context, tx *ent.Client, c Change, now time.Time) error {
	row := Take(ctx, c, now)
	if row == nil {
		return nil
	}
	if err := insert(ctx, tx, row); err != nil {
		untake(ctx)
		return err
	}
	return nil
}

// insert stores a row through ent.
func insert(ctx context.Context, client *ent.Client, row *Row) error {
	create := client.AuditRecord.Create().
		SetID(row.ID).SetAppID(row.AppID).SetCreatedAt(row.CreatedAt).
		SetActorKind(auditrecord.ActorKind(row.ActorKind)).SetActorID(row.ActorID).SetActorName(row.ActorName).
		SetAction(row.Action).SetTargetType(row.TargetType).SetTargetID(row.TargetID).
		SetRemoteAddr(row.RemoteAddr).SetRequestID(row.RequestID)
	if row.Changes != nil {
		create.SetChanges(row.Changes)
	}
	if err := create.Exec(tenant.System(ctx)); err != nil {
		return fmt.Errorf("write audit record of %s: %w", row.Action, err)
	}
	return nil
}

// Tx runs fn in a transaction of client (or in client's, if it is
// transactional) and writes the record of the mutation ctx runs, which
// describes the change fn made, in the same transaction.
func Tx(ctx context.Context, client *ent.Client, fn func(tx *ent.Client) (Change, error)) error {
	return db.WithTx(ctx, client, func(tx *ent.Client) error {
		c, err := fn(tx)
		if err != nil {
			return err
		}
		return Record(ctx, tx, c, time.Now())
	})
}

// Finish writes the record of a mutation that changed nothing in a
// transaction of its own (a reveal, a replay that found nothing), when the
// service wrote none: fallback describes it.
func Finish(ctx context.Context, client *ent.Client, fallback Change, now time.Time) error {
	return Record(ctx, client, fallback, now)
}
