package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/heraldhq/herald/db"
)

const migrateUsage = `usage: herald migrate status [--db DB]
       herald migrate up [--db DB] [--dry-run]

status shows the migrations the database has had and those pending; it
takes no lock and changes nothing, so it works while herald serves.
up applies the pending migrations (herald serve does too, unless started
with --migrate=false); --dry-run prints their SQL and changes nothing.
`

// migrateCmd runs `herald migrate status|up`.
func migrateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, migrateUsage)
		return errors.New("migrate: name a subcommand: status or up")
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("herald migrate "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, migrateUsage); fs.PrintDefaults() }
	dsn := fs.String("db", envOr("HERALD_DB", "herald.db"), "database: a SQLite file, or a postgres:// URL ($HERALD_DB)")
	var dryRun *bool
	if sub == "up" {
		dryRun = fs.Bool("dry-run", false, "print the SQL of the pending migrations and change nothing")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch sub {
	case "status":
		st, err := db.Status(ctx, db.Config{DSN: *dsn}, false)
		if err != nil {
			return err
		}
		printStatus(stdout, *dsn, st)
		return nil
	case "up":
		if *dryRun {
			return printPlan(ctx, stdout, *dsn)
		}
		return migrateUp(ctx, stdout, stderr, *dsn)
	default:
		fmt.Fprint(stderr, migrateUsage)
		return fmt.Errorf("migrate: unknown subcommand %q: use status or up", sub)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// printStatus shows where the database stands.
func printStatus(w io.Writer, dsn string, st *db.MigrationStatus) {
	fmt.Fprintf(w, "database: %s (%s)\n", db.Redact(dsn), st.Dialect)
	switch {
	case st.Empty:
		fmt.Fprintln(w, "schema:   none yet (a new database)")
	case st.Adoption != nil:
		fmt.Fprintf(w, "schema:   made by herald %s, before versioned migrations; `herald migrate up` records %s as its baseline (no SQL runs for it)\n",
			st.Adoption.Release, st.Adoption.Baseline)
	default:
		fmt.Fprintf(w, "schema:   %s, floor %d (this herald knows schema version %d)\n", st.Current(), st.Floor, db.SchemaVersion)
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	if len(st.Applied) > 0 {
		fmt.Fprintln(w, "applied:")
		for _, a := range st.Applied {
			note := ""
			if a.Baseline {
				note = "baseline: the schema was there already"
			}
			if !a.Known {
				note = "unknown to this herald: a newer herald applied it"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", a.Version, a.Description, a.AppliedAt.UTC().Format("2006-01-02 15:04:05 UTC"), note)
		}
		tw.Flush()
	}
	if len(st.Pending) == 0 {
		fmt.Fprintln(w, "pending:  none: the schema is up to date")
		return
	}
	fmt.Fprintf(w, "pending:  %d (`herald migrate up --dry-run` shows their SQL)\n", len(st.Pending))
	for _, m := range st.Pending {
		fmt.Fprintf(tw, "  %s\t%s\n", m.Version, m.Description)
	}
	tw.Flush()
}

// printPlan prints what `herald migrate up` would do, as SQL.
func printPlan(ctx context.Context, w io.Writer, dsn string) error {
	st, err := db.Status(ctx, db.Config{DSN: dsn}, true)
	if err != nil {
		return err
	}
	if st.Floor > db.SchemaVersion {
		return &db.SchemaTooNewError{Stored: st.Floor, Known: db.SchemaVersion}
	}
	fmt.Fprintf(w, "-- herald migrate up --dry-run on %s (%s): nothing was changed.\n", db.Redact(dsn), st.Dialect)
	if st.Adoption != nil {
		fmt.Fprintf(w, "-- The database was made by herald %s, before versioned migrations; its schema is that herald's.\n"+
			"-- Recorded as applied without running (baseline): %s.\n", st.Adoption.Release, st.Adoption.Baseline)
	}
	if len(st.Pending) == 0 {
		fmt.Fprintln(w, "-- No migration is pending: the schema is up to date.")
		return nil
	}
	fmt.Fprintf(w, "-- %d migration(s) pending, each applied in a transaction of its own:\n", len(st.Pending))
	for _, m := range st.Pending {
		fmt.Fprintf(w, "\n-- %s_%s.sql\n%s", m.Version, m.Description, m.SQL)
		if !strings.HasSuffix(m.SQL, "\n") {
			fmt.Fprintln(w)
		}
	}
	return nil
}

// migrateUp applies the pending migrations and says what it did.
func migrateUp(ctx context.Context, stdout, stderr io.Writer, dsn string) error {
	log, err := newLogger("text", "warn", stderr)
	if err != nil {
		return err
	}
	d, err := db.Open(ctx, db.Config{DSN: dsn, Migrate: db.MigrateNone, Logger: log})
	if err != nil {
		return err
	}
	defer d.Close()
	before, err := d.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	if err := d.Migrate(ctx); err != nil {
		return err
	}
	after, err := d.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	if before.Adoption != nil {
		fmt.Fprintf(stdout, "adopted the database herald %s made: recorded %s as its baseline\n", before.Adoption.Release, before.Adoption.Baseline)
	}
	if len(before.Pending) == 0 {
		fmt.Fprintf(stdout, "no migration pending: the schema is at %s\n", after.Current())
		return nil
	}
	for _, m := range before.Pending {
		fmt.Fprintf(stdout, "applied %s_%s\n", m.Version, m.Description)
	}
	fmt.Fprintf(stdout, "the schema is at %s\n", after.Current())
	return nil
}
