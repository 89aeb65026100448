package db_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"ariga.io/atlas/sql/migrate"
	"entgo.io/ent/dialect"

	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/internal/migrationgen"
	"github.com/heraldhq/herald/internal/pgtest"
	"github.com/heraldhq/herald/tenant"
)

// TestMigrations_MatchEntSchema replays each dialect's migrations into an
// empty database and compares the schema they make with the one
// ent/schema describes: a change to ent/schema needs its migration.
func TestMigrations_MatchEntSchema(t *testing.T) {
	for _, d := range []string{dialect.SQLite, dialect.Postgres} {
		t.Run(d, func(t *testing.T) {
			var dev string
			if d == dialect.Postgres {
				dev = pgtest.New(t)
			}
			dir := &migrate.MemDir{}
			root := filepath.Join("migrations", map[string]string{dialect.SQLite: "sqlite", dialect.Postgres: "postgres"}[d])
			entries, err := os.ReadDir(root)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				b, err := os.ReadFile(filepath.Join(root, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				if err := dir.WriteFile(e.Name(), b); err != nil {
					t.Fatal(err)
				}
			}
			if err := migrate.Validate(dir); err != nil {
				t.Fatalf("%s does not match its atlas.sum (%v): if you edited a migration by hand, run `make migration-hash`", root, err)
			}
			name, err := migrationgen.Generate(context.Background(), dir, migrationgen.Options{
				Dialect: d, DevURL: dev, Name: "check", Version: "29991231235959",
			})
			if err != nil {
				t.Fatal(err)
			}
			if name != "" {
				f, _ := dir.Open(name)
				b := make([]byte, 64<<10)
				n, _ := f.Read(b)
				t.Fatalf("ent/schema describes a schema the %s migrations do not make; they lack:\n\n%s\n"+
					"Run `make migration name=<what_changed>` (for example name=add_app_quotas): it writes the migration of both dialects; review and commit them.",
					d, b[:n])
			}
		})
	}
}

// destructive matches PostgreSQL statements that break the release before
// them: what that release reads or writes goes away or changes.
var destructive = regexp.MustCompile(`(?i)\b(DROP\s+(TABLE|COLUMN|INDEX)|RENAME\s+(TO|COLUMN)|ALTER\s+COLUMN\s+\S+\s+(TYPE|SET\s+NOT\s+NULL)|SET\s+DATA\s+TYPE)\b`)

// TestMigrations_PostgresExpandOrRaiseTheFloor holds PostgreSQL's
// migrations to the rolling-upgrade rule: a migration only adds (expand),
// or, when it removes or changes what earlier releases use (contract),
// raises the floor in herald_schema_versions so that those releases refuse
// the database instead of failing on it.
func TestMigrations_PostgresExpandOrRaiseTheFloor(t *testing.T) {
	ms, err := db.Migrations(dialect.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		raises := strings.Contains(m.SQL, `INSERT INTO "herald_schema_versions"`)
		for _, line := range strings.Split(m.SQL, "\n") {
			if strings.HasPrefix(line, "--") {
				continue
			}
			if destructive.MatchString(line) && !raises {
				t.Errorf("migration %s_%s is not backward compatible (%s) yet does not raise the floor in herald_schema_versions: "+
					"split it into an expand step now and a contract step a release later (docs/upgrading.md)", m.Version, m.Description, strings.TrimSpace(line))
			}
		}
	}
}

// legacyDatabase makes a database as a herald from before versioned
// migrations left it: the schema of the migrations up to baseline, made
// without recording them, and an app, an endpoint and an event in it.
func legacyDatabase(t *testing.T, dsn, baseline string) {
	t.Helper()
	d := dialect.SQLite
	driver, source := "sqlite3", dsn
	if db.IsPostgres(dsn) {
		d, driver = dialect.Postgres, "pgx"
	}
	conn, err := sql.Open(driver, source)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ms, err := db.Migrations(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Version > baseline {
			break
		}
		for _, stmt := range splitStatements(m.SQL) {
			if _, err := conn.Exec(stmt); err != nil {
				t.Fatalf("%s: %s: %v", m.Version, stmt, err)
			}
		}
	}
	now := time.Now().UTC()
	for _, q := range []string{
		"INSERT INTO apps (id, created_at, updated_at, name, accept_unknown_event_types) VALUES ('app_1', ?, ?, 'acme', false)",
		"INSERT INTO endpoints (id, created_at, updated_at, name, url, event_types, auth, retry_policy, secret, app_id) VALUES ('ep_1', ?, ?, 'e', 'https://example.com/hook', '[]', '{}', '{}', 'whsec_x', 'app_1')",
		"INSERT INTO events (id, event_type, payload, created_at, app_id) VALUES ('evt_1', 'order.created', '{\"n\":1}', ?, 'app_1')",
	} {
		args := []any{now, now}
		if strings.Count(q, "?") == 1 {
			args = args[:1]
		}
		if d == dialect.Postgres {
			q = strings.Replace(strings.Replace(q, "?", "$1", 1), "?", "$2", 1)
		}
		if _, err := conn.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// splitStatements splits a migration file of one statement per line.
func splitStatements(file string) []string {
	var out []string
	for _, line := range strings.Split(file, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "--") {
			out = append(out, line)
		}
	}
	return out
}

func TestMigrate_AdoptsADatabaseMadeBeforeVersionedMigrations(t *testing.T) {
	cases := []struct {
		name, release, baseline string
		postgres                bool
	}{
		{"sqlite 8f9a04e", "8f9a04e", "20261125160900", false},
		{"sqlite 8a13244", "8a13244", "20261128175436", false},
		{"postgres 8a13244", "8a13244", "20261128175436", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dsn := filepath.Join(t.TempDir(), "herald.db")
			if c.postgres {
				dsn = pgtest.New(t)
			}
			legacyDatabase(t, dsn, c.baseline)
			ctx := context.Background()
			st, err := db.Status(ctx, db.Config{DSN: dsn}, true)
			if err != nil {
				t.Fatal(err)
			}
			if st.Adoption == nil || st.Adoption.Release != c.release || st.Adoption.Baseline != c.baseline {
				t.Fatalf("status: adoption %+v, want herald %s at %s", st.Adoption, c.release, c.baseline)
			}
			all, _ := db.Migrations(st.Dialect)
			var after int
			for _, m := range all {
				if m.Version > c.baseline {
					after++
				}
			}
			if len(st.Pending) != after {
				t.Errorf("%d migrations pending, want the %d after the baseline", len(st.Pending), after)
			}
			if _, err := db.Open(ctx, db.Config{DSN: dsn, Migrate: db.MigrateCheck}); !errors.As(err, new(*db.PendingMigrationsError)) ||
				!strings.Contains(err.Error(), "herald migrate up") {
				t.Fatalf("open with MigrateCheck: %v, want a PendingMigrationsError naming herald migrate up", err)
			}
			d := openDSN(t, dsn)
			sys := tenant.System(ctx)
			if ev, err := d.Client.Event.Get(sys, "evt_1"); err != nil || string(ev.Payload) != `{"n":1}` {
				t.Fatalf("event after adoption: %+v, %v", ev, err)
			}
			if ep, err := d.Client.Endpoint.Get(sys, "ep_1"); err != nil || ep.URL != "https://example.com/hook" {
				t.Fatalf("endpoint after adoption: %+v, %v", ep, err)
			}
			st, err = d.MigrationStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !st.UpToDate() || st.Applied[0].Version != c.baseline || !st.Applied[0].Baseline || st.Floor != 1 {
				t.Errorf("status after adoption: %+v", st)
			}
		})
	}
}

func TestMigrate_RefusesToAdoptASchemaThatDiffers(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "herald.db")
	legacyDatabase(t, dsn, "20261128175436")
	conn, err := sql.Open("sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec("DROP INDEX delivery_due"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	_, err = db.Open(context.Background(), db.Config{DSN: dsn})
	var mismatch *db.SchemaMismatchError
	if !errors.As(err, &mismatch) || mismatch.Release != "8a13244" || !strings.Contains(err.Error(), "delivery_due") {
		t.Fatalf("open of a schema that differs: %v, want a SchemaMismatchError naming delivery_due", err)
	}
}

func TestMigrate_RefusesADatabaseHeraldDidNotMake(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "other.db")
	conn, err := sql.Open("sqlite3", dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec("CREATE TABLE customers (id integer PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	_, err = db.Open(context.Background(), db.Config{DSN: dsn})
	var foreign *db.ForeignDatabaseError
	if !errors.As(err, &foreign) || !strings.Contains(err.Error(), "customers") {
		t.Fatalf("open of another application's database: %v, want a ForeignDatabaseError", err)
	}
}

func TestStatus_NewDatabaseHasEveryMigrationPending(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st, err := db.Status(ctx, db.Config{DSN: dsn}, true)
		if err != nil {
			t.Fatal(err)
		}
		all, _ := db.Migrations(st.Dialect)
		if !st.Empty || len(st.Pending) != len(all) || len(st.Applied) != 0 {
			t.Fatalf("status of a new database: %+v", st)
		}
		if !db.IsPostgres(dsn) {
			if _, err := os.Stat(dsn); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("status created the SQLite file (%v)", err)
			}
		}
		d := openDSN(t, dsn)
		st, err = d.MigrationStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !st.UpToDate() || len(st.Applied) != len(all) || st.Current() != all[len(all)-1].Version || st.Floor != db.SchemaVersion {
			t.Fatalf("status after Open: %+v", st)
		}
		for _, a := range st.Applied {
			if a.Baseline || !a.Known || a.AppliedAt.IsZero() {
				t.Errorf("applied migration %+v", a)
			}
		}
	})
}

// TestMigrate_RunsOnASchemaANewerHeraldMigrated: a newer herald's
// migration this one does not know keeps it working (expand only), so it
// opens the database instead of refusing it.
func TestMigrate_RunsOnASchemaANewerHeraldMigrated(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		d, err := db.Open(ctx, db.Config{DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Write.ExecContext(ctx, "ALTER TABLE apps ADD COLUMN quota bigint NULL"); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Write.ExecContext(ctx, rebind(d, `INSERT INTO herald_schema_revisions (version, description, type, applied, total, executed_at, execution_time, error, error_stmt, hash, partial_hashes, operator_version)
VALUES ('29990101000000', 'add_app_quotas', 2, 1, 1, ?, 0, '', '', 'h1:x', '', 'herald')`), time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
		d.Close()
		for _, mode := range []db.MigrateMode{db.MigrateApply, db.MigrateCheck} {
			again, err := db.Open(ctx, db.Config{DSN: dsn, Migrate: mode})
			if err != nil {
				t.Fatalf("open (mode %d) of a database a newer herald migrated: %v", mode, err)
			}
			st, err := again.MigrationStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if last := st.Applied[len(st.Applied)-1]; last.Known || last.Version != "29990101000000" || !st.UpToDate() {
				t.Errorf("status: %+v", st)
			}
			again.Close()
		}
	})
}
