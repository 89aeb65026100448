package db_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/internal/pgtest"
	"github.com/heraldhq/herald/tenant"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// dialects runs f against a fresh SQLite file and a fresh PostgreSQL
// database (skipped without PostgreSQL).
func dialects(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, filepath.Join(t.TempDir(), "herald.db")) })
	t.Run("postgres", func(t *testing.T) { f(t, pgtest.New(t)) })
}

func openDSN(t *testing.T, dsn string) *db.DB {
	t.Helper()
	d, err := db.Open(context.Background(), db.Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// rebind turns ? placeholders into PostgreSQL's $n.
func rebind(d *db.DB, q string) string {
	if d.Dialect() != dialect.Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func TestOpen_PostgresURLSelectsPostgres(t *testing.T) {
	dsn := pgtest.New(t)
	for _, u := range []string{dsn, strings.Replace(dsn, "postgres://", "postgresql://", 1)} {
		d, err := db.Open(context.Background(), db.Config{DSN: u})
		if err != nil {
			t.Fatalf("open %s: %v", u, err)
		}
		if d.Dialect() != dialect.Postgres || d.Pool == nil || d.ConnConfig() == nil || d.Write != d.Read {
			t.Errorf("open %s: dialect %q, pool %v, conn config %v", u, d.Dialect(), d.Pool, d.ConnConfig())
		}
		ctx := tenant.System(context.Background())
		app, err := d.Client.App.Create().SetName("acme").Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := d.Client.App.Get(ctx, app.ID); err != nil || got.Name != "acme" {
			t.Fatalf("read back app: %+v, %v", got, err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpen_SQLitePathIsNotAURL(t *testing.T) {
	for _, dsn := range []string{"herald.db", "/var/lib/herald/herald.db", "file.db?mode=rwc", "postgres.db", "./postgres://x"} {
		if db.IsPostgres(dsn) {
			t.Errorf("IsPostgres(%q) = true", dsn)
		}
	}
	for _, dsn := range []string{"postgres://h/db", "postgresql://u:p@h:5432/db?sslmode=require", "POSTGRES://h/db"} {
		if !db.IsPostgres(dsn) {
			t.Errorf("IsPostgres(%q) = false", dsn)
		}
	}
}

// countingHandler counts the records whose message is msg.
type countingHandler struct {
	msg string
	n   *atomic.Int32
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

func TestOpen_ConcurrentOpensOfAFreshDatabaseMigrateOnce(t *testing.T) {
	dsn := pgtest.New(t)
	var migrations atomic.Int32
	log := slog.New(countingHandler{msg: "migrated database schema", n: &migrations})
	const replicas = 5
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	dbs := make([]*db.DB, replicas)
	start := make(chan struct{})
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			dbs[i], errs[i] = db.Open(context.Background(), db.Config{DSN: dsn, Logger: log})
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
			continue
		}
		defer dbs[i].Close()
	}
	if t.Failed() {
		return
	}
	if n := migrations.Load(); n != 1 {
		t.Errorf("%d replicas migrated the schema, want 1", n)
	}
	var versions int
	if err := dbs[0].Read.QueryRow("SELECT count(*) FROM herald_schema_versions").Scan(&versions); err != nil || versions != 1 {
		t.Errorf("%d schema versions recorded (%v), want 1", versions, err)
	}
}

func TestOpen_RefusesASchemaNewerThanItKnows(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		d, err := db.Open(context.Background(), db.Config{DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		newer := db.SchemaVersion + 1
		if _, err := d.Write.Exec(rebind(d, "INSERT INTO herald_schema_versions (version, applied_at) VALUES (?, ?)"), newer, time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		_, err = db.Open(context.Background(), db.Config{DSN: dsn})
		var tooNew *db.SchemaTooNewError
		if !errors.As(err, &tooNew) || tooNew.Stored != newer || tooNew.Known != db.SchemaVersion {
			t.Fatalf("open of a newer schema: %v, want a SchemaTooNewError", err)
		}
		msg := err.Error()
		for _, want := range []string{fmt.Sprintf("version %d", newer), fmt.Sprintf("version %d", db.SchemaVersion), "upgrade herald"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not say %q", msg, want)
			}
		}
		if strings.Contains(msg, "secret") {
			t.Errorf("error %q shows the password", msg)
		}
	})
}

// payloads are published payloads whose exact bytes must survive storage:
// odd key order, duplicate keys, repeated whitespace and newlines, unicode
// escapes (including NUL, which jsonb refuses, and a surrogate pair),
// escaped slashes, raw non-ASCII and characters json.Marshal would escape.
var payloads = []string{
	`{"z":1,  "a" : [ 1 ,2 ],` + "\n\t" + `"z":"dup"}`,
	`{"name":"caf\u00e9","emoji":"\ud83d\ude00","nul":"a\u0000b","slash":"\/","raw":"naïve ☃"}`,
	`{"html":"<b>&amp;</b>","n":1.50,"e":1E+2,"big":123456789012345678901234567890}`,
	`[]`,
}

// TestPayload_RoundTripsByteForByte stores payloads as the engine does (its
// own INSERT with the bytes as a parameter) and reads them back through ent
// and through SQL.
func TestPayload_RoundTripsByteForByte(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		d := openDSN(t, dsn)
		ctx := tenant.System(context.Background())
		app, err := d.Client.App.Create().SetName("acme").Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range payloads {
			id := fmt.Sprintf("evt_%d", i)
			_, err := d.Write.ExecContext(ctx, rebind(d, `INSERT INTO events (id, event_type, payload, idempotency_key, delivery_count, created_at, app_id)
VALUES (?, ?, ?, ?, ?, ?, ?)`), id, "order.created", []byte(p), nil, 0, time.Now().UTC(), app.ID)
			if err != nil {
				t.Fatalf("insert %s: %v", p, err)
			}
			ev, err := d.Client.Event.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ev.Payload, []byte(p)) {
				t.Errorf("through ent:\n got %s\nwant %s", ev.Payload, p)
			}
			var raw []byte
			if err := d.Read.QueryRowContext(ctx, rebind(d, "SELECT payload FROM events WHERE id = ?"), id).Scan(&raw); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(raw, []byte(p)) {
				t.Errorf("through SQL:\n got %s\nwant %s", raw, p)
			}
		}
	})
}

// TestPayload_WrittenThroughEntRoundTrips writes payloads and catalog
// examples through ent. ent encodes JSON fields with encoding/json, which
// compacts whitespace and escapes <, > and &, on both dialects alike; what
// it hands the database comes back unchanged: key order, duplicate keys
// and escapes.
func TestPayload_WrittenThroughEntRoundTrips(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		d := openDSN(t, dsn)
		ctx := tenant.System(context.Background())
		app, err := d.Client.App.Create().SetName("acme").Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range payloads {
			var want bytes.Buffer
			if err := json.Compact(&want, []byte(p)); err != nil {
				t.Fatal(err)
			}
			// What encoding/json makes of a json.RawMessage.
			enc, _ := json.Marshal(json.RawMessage(p))
			ev, err := d.Client.Event.Create().SetAppID(app.ID).SetEventType("order.created").SetPayload(json.RawMessage(p)).Save(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.Client.Event.Get(ctx, ev.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Payload, enc) {
				t.Errorf("event payload:\n got %s\nwant %s", got.Payload, enc)
			}
			et, err := d.Client.EventType.Create().SetAppID(app.ID).SetName(fmt.Sprintf("t.n%d", len(p))).
				SetExample(json.RawMessage(p)).SetJSONSchema(json.RawMessage(p)).Save(ctx)
			if err != nil {
				t.Fatal(err)
			}
			gotET, err := d.Client.EventType.Get(ctx, et.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(gotET.Example, enc) || !bytes.Equal(gotET.JSONSchema, enc) {
				t.Errorf("event type example %s, schema %s, want %s", gotET.Example, gotET.JSONSchema, enc)
			}
		}
	})
}

// TestTime_StoredToTheMicrosecondInUTC documents how times come back.
// Herald writes every time in UTC (schema.Now); both dialects return UTC.
// PostgreSQL keeps microseconds (ordering by a time column, such as
// next_attempt_at, is exact only to the microsecond there), SQLite every
// nanosecond.
func TestTime_StoredToTheMicrosecondInUTC(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		d := openDSN(t, dsn)
		ctx := tenant.System(context.Background())
		at := time.Date(2026, 11, 25, 12, 15, 21, 123456789, time.UTC)
		app, err := d.Client.App.Create().SetName("acme").SetCreatedAt(at).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.Client.App.Get(ctx, app.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := at
		if d.Dialect() == dialect.Postgres {
			want = want.Truncate(time.Microsecond)
		}
		if !got.CreatedAt.Equal(want) || got.CreatedAt.Location() != time.UTC {
			t.Errorf("created_at = %s, want %s", got.CreatedAt, want)
		}
	})
}

func TestMutex_HasOneHolderAtATime(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		a := openDSN(t, dsn)
		b := a
		if db.IsPostgres(dsn) {
			b = openDSN(t, dsn) // another replica
		}
		ctx := context.Background()
		unlock, ok, err := a.Mutex("retention").TryLock(ctx)
		if err != nil || !ok {
			t.Fatalf("first TryLock: ok=%v err=%v", ok, err)
		}
		if _, ok, err := b.Mutex("retention").TryLock(ctx); err != nil || ok {
			t.Fatalf("second TryLock while held: ok=%v err=%v", ok, err)
		}
		other, ok, err := b.Mutex("other").TryLock(ctx)
		if err != nil || !ok {
			t.Fatalf("a lock of another name: ok=%v err=%v", ok, err)
		}
		other()
		unlock()
		again, ok, err := b.Mutex("retention").TryLock(ctx)
		if err != nil || !ok {
			t.Fatalf("TryLock after unlock: ok=%v err=%v", ok, err)
		}
		again()
	})
}

// TestPostgres_ColumnTypes checks how ent's types land on PostgreSQL:
// payload-like JSON as json (kept byte for byte), other JSON as jsonb,
// times as timestamptz (microseconds), IDs and enums as text types.
func TestPostgres_ColumnTypes(t *testing.T) {
	d := openDSN(t, pgtest.New(t))
	rows, err := d.Read.Query(`SELECT table_name, column_name, data_type FROM information_schema.columns
WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := make(map[string]string)
	for rows.Next() {
		var table, column, typ string
		if err := rows.Scan(&table, &column, &typ); err != nil {
			t.Fatal(err)
		}
		got[table+"."+column] = typ
		t.Logf("%s.%s %s", table, column, typ)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"events.payload":                 "json",
		"event_types.example":            "json",
		"event_types.json_schema":        "json",
		"endpoints.event_types":          "jsonb",
		"events.id":                      "character varying",
		"deliveries.status":              "character varying",
		"deliveries.next_attempt_at":     "timestamp with time zone",
		"events.created_at":              "timestamp with time zone",
		"attempts.response_body":         "text",
		"api_keys.token_hash":            "bytea",
		"endpoints.timeout":              "bigint",
		"herald_schema_versions.version": "integer",
	}
	for col, typ := range want {
		if got[col] != typ {
			t.Errorf("%s is %q, want %q", col, got[col], typ)
		}
	}
	for col, typ := range got {
		if strings.HasSuffix(col, "_at") && typ != "timestamp with time zone" {
			t.Errorf("%s is %q, want timestamp with time zone", col, typ)
		}
	}
}
