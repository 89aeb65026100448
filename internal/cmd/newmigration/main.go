// Command newmigration writes the migration files that bring Herald's
// database schema in line with ent/schema, one per dialect, with the same
// version. Run it through make:
//
//	make migration name=add_app_quotas            # adds and changes only (expand)
//	make migration name=drop_x contract=1         # also drops what ent/schema no longer has
//	make migration-hash                           # after editing a migration by hand
//
// The PostgreSQL migration is planned against a throwaway PostgreSQL
// cluster started here (PostgreSQL's binaries are needed), or the server
// HERALD_TEST_POSTGRES names.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"ariga.io/atlas/sql/migrate"
	"entgo.io/ent/dialect"

	"github.com/heraldhq/herald/internal/migrationgen"
	"github.com/heraldhq/herald/internal/pgcluster"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "newmigration:", err)
		os.Exit(1)
	}
}

func run() error {
	name := flag.String("name", "", "what the change does, in lower-case words joined by underscores (add_app_quotas)")
	contract := flag.Bool("contract", false, "also drop columns and indexes ent/schema no longer has (a contract step)")
	version := flag.String("version", "", "the files' version (default: now, as 20060102150405 in UTC)")
	rehash := flag.Bool("rehash", false, "only rewrite each directory's atlas.sum, after a hand edit")
	root := flag.String("dir", "db/migrations", "the directory holding one migration directory per dialect")
	flag.Parse()
	dirs := map[string]string{
		dialect.SQLite:   filepath.Join(*root, "sqlite"),
		dialect.Postgres: filepath.Join(*root, "postgres"),
	}
	if *rehash {
		for _, path := range dirs {
			dir, err := migrate.NewLocalDir(path)
			if err != nil {
				return err
			}
			if err := migrationgen.Rehash(dir); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			fmt.Println("rehashed", filepath.Join(path, migrate.HashFileName))
		}
		return nil
	}
	if *name == "" {
		return fmt.Errorf("name the change: make migration name=add_app_quotas")
	}
	if *version == "" {
		*version = time.Now().UTC().Format("20060102150405")
	}
	ctx := context.Background()
	devURL, stop, err := postgresDev(ctx)
	if err != nil {
		return err
	}
	defer stop()
	wrote := 0
	for _, d := range []string{dialect.SQLite, dialect.Postgres} {
		dir, err := migrate.NewLocalDir(dirs[d])
		if err != nil {
			return err
		}
		file, err := migrationgen.Generate(ctx, dir, migrationgen.Options{
			Dialect: d, DevURL: devURL, Name: *name, Version: *version, Contract: *contract,
		})
		if err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
		if file == "" {
			fmt.Printf("%s: the migrations already make the schema ent/schema describes\n", d)
			continue
		}
		wrote++
		fmt.Println("wrote", filepath.Join(dirs[d], file))
	}
	if wrote > 0 {
		fmt.Println("review the SQL (PostgreSQL: expand only, see docs/upgrading.md), then commit the files with the schema change")
	}
	return nil
}

// postgresDev returns an empty PostgreSQL database to plan against.
func postgresDev(ctx context.Context) (string, func(), error) {
	var (
		c   *pgcluster.Cluster
		err error
	)
	stop := func() {}
	if s := os.Getenv("HERALD_TEST_POSTGRES"); s != "" {
		c, err = pgcluster.External(s)
	} else {
		pgcluster.RemoveStale()
		c, err = pgcluster.Start(false)
		if err == nil {
			stop = func() { _ = c.Close() }
		}
	}
	if err != nil {
		return "", nil, fmt.Errorf("a PostgreSQL to plan the PostgreSQL migration against: %w", err)
	}
	name, dsn, err := c.CreateDatabase(ctx, "herald_migration_")
	if err != nil {
		stop()
		return "", nil, err
	}
	return dsn, func() {
		_ = c.DropDatabase(context.Background(), name)
		stop()
	}, nil
}
