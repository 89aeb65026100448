package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/heraldtest"
)

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String() + errOut.String(), err
}

func TestMigrate_StatusDryRunAndUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	out, err := runCmd(t, "migrate", "status", "--db", path)
	if err != nil || !strings.Contains(out, "none yet") || !strings.Contains(out, "schema_version_1") {
		t.Fatalf("status of a new database: %v\n%s", err, out)
	}
	out, err = runCmd(t, "migrate", "up", "--dry-run", "--db", path)
	if err != nil || !strings.Contains(out, "nothing was changed") || !strings.Contains(out, "CREATE TABLE `apps`") {
		t.Fatalf("up --dry-run: %v\n%s", err, out)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("status or a dry run created the database (%v)", err)
	}
	out, err = runCmd(t, "migrate", "up", "--db", path)
	if err != nil || !strings.Contains(out, "applied 20261128175436_schema_version_1") {
		t.Fatalf("up: %v\n%s", err, out)
	}
	out, err = runCmd(t, "migrate", "status", "--db", path)
	if err != nil || !strings.Contains(out, "pending:  none") || !strings.Contains(out, "20261128175436  schema_version_1") {
		t.Fatalf("status after up: %v\n%s", err, out)
	}
	out, err = runCmd(t, "migrate", "up", "--db", path)
	if err != nil || !strings.Contains(out, "no migration pending") {
		t.Fatalf("second up: %v\n%s", err, out)
	}
}

// TestServe_MigrateFalseRefusesAnOldSchema: herald serve --migrate=false
// refuses a database made before versioned migrations (herald 8a13244's,
// the upgrade tests' fixture: its schema and herald_schema_versions, no
// migration history) and names the command that migrates it; after that
// command it starts.
func TestServe_MigrateFalseRefusesAnOldSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	fixture, err := os.ReadFile(filepath.Join("..", "..", "internal", "upgradetest", "testdata", "8a13244-sqlite.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, fixture, 0o600); err != nil {
		t.Fatal(err)
	}
	serve := []string{"serve", "--db", path, "--addr", "127.0.0.1:0", "--migrate=false"}
	out, err := runCmd(t, serve...)
	if err == nil || !strings.Contains(err.Error(), "herald migrate up") || !strings.Contains(err.Error(), "pending") {
		t.Fatalf("serve --migrate=false on an old schema: %v, want a refusal naming herald migrate up\n%s", err, out)
	}
	out, err = runCmd(t, "migrate", "up", "--dry-run", "--db", path)
	if err != nil || !strings.Contains(out, "herald 8a13244") {
		t.Fatalf("up --dry-run of an old schema: %v\n%s", err, out)
	}
	out, err = runCmd(t, "migrate", "up", "--db", path)
	if err != nil || !strings.Contains(out, "adopted the database herald 8a13244 made") {
		t.Fatalf("up: %v\n%s", err, out)
	}
	runUntil(t, serve, regexp.MustCompile(`herald listening`))
}

// TestMigrate_StatusWhileHeraldServes: status and up --dry-run take no
// lock, so an operator reads them while herald serves the SQLite file (which
// it keeps locked); up, which needs the file to itself, says it is in use.
func TestMigrate_StatusWhileHeraldServes(t *testing.T) {
	bin := heraldtest.Binary(t)
	path := filepath.Join(t.TempDir(), "herald.db")
	heraldtest.StartProcess(t, bin, "--db", path)
	for _, args := range [][]string{{"migrate", "status"}, {"migrate", "up", "--dry-run"}} {
		out, err := exec.Command(bin, append(args, "--db", path)...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "up to date") {
			t.Errorf("herald %s while herald serves: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	out, err := exec.Command(bin, "migrate", "up", "--db", path).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another herald process") {
		t.Errorf("herald migrate up while herald serves: %v\n%s", err, out)
	}
}
