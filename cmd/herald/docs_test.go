package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/internal/pgcluster"
	"github.com/heraldhq/herald/internal/pgtest"
)

// shellLines returns the command lines of a docs page's ```sh blocks,
// continuation lines joined.
func shellLines(t *testing.T, page string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "docs", page))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	in, cont := false, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```sh"):
			in = true
		case strings.HasPrefix(line, "```"):
			in = false
		case in:
			line = cont + strings.TrimSpace(line)
			if strings.HasSuffix(line, "\\") {
				cont = strings.TrimSuffix(line, "\\")
				continue
			}
			cont = ""
			if line != "" && !strings.HasPrefix(line, "#") {
				lines = append(lines, line)
			}
		}
	}
	return lines
}

// TestDocs_CommandsRunAsWritten runs the commands of docs/upgrading.md and
// docs/backups.md that need no service manager or container runtime, in
// their order, with this build of herald on PATH, the pages' paths moved
// into a temporary directory and their PostgreSQL URLs pointed at test
// databases: migrate status and up (with and without --dry-run), backup,
// the SQLite restore, and pg_dump and pg_restore.
func TestDocs_CommandsRunAsWritten(t *testing.T) {
	bin := heraldtest.Binary(t)
	dir := t.TempDir()
	binDir := filepath.Join(dir, "bin")
	for _, d := range []string{binDir, filepath.Join(dir, "lib"), filepath.Join(dir, "backups")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(bin, filepath.Join(binDir, "herald")); err != nil {
		t.Fatal(err)
	}
	path := binDir + string(os.PathListSeparator) + os.Getenv("PATH")
	if pgDump, err := pgcluster.Tool("pg_dump"); err == nil {
		path = filepath.Dir(pgDump) + string(os.PathListSeparator) + path
	}
	served := pgtest.New(t)   // the database the pages' herald uses
	restored := pgtest.New(t) // the empty one pg_restore fills
	sqlite := filepath.Join(dir, "lib", "herald.db")
	for _, db := range []string{sqlite, served} {
		if out, err := exec.Command(bin, "migrate", "up", "--db", db).CombinedOutput(); err != nil {
			t.Fatalf("prepare %s: %v\n%s", db, err, out)
		}
	}
	rewrite := strings.NewReplacer(
		"/var/lib/herald/", filepath.Join(dir, "lib")+"/",
		"/var/backups/herald/", filepath.Join(dir, "backups")+"/",
		"postgres://herald:secret@db:5432/herald?sslmode=verify-full", served,
		"postgres://herald:secret@db:5432/herald", restored,
		"herald-2026-12-06", "herald-$(date +%F)",
	)
	runs := []string{"herald ", "pg_dump ", "pg_restore ", "rm -f ", "cp "}
	ran := 0
	for _, page := range []string{"upgrading.md", "backups.md"} {
		for _, line := range shellLines(t, page) {
			runnable := false
			for _, p := range runs {
				runnable = runnable || strings.HasPrefix(line, p)
			}
			if !runnable {
				t.Logf("%s: not run here: %s", page, line)
				continue
			}
			cmd := exec.Command("bash", "-euo", "pipefail", "-c", rewrite.Replace(line))
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "PATH="+path, "HERALD_DB="+served)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s: %s: %v\n%s", page, line, err, out.String())
			}
			ran++
			t.Logf("%s: %s\n%s", page, line, out.String())
		}
	}
	if ran < 9 {
		t.Fatalf("ran %d commands of the pages: did their code blocks change?", ran)
	}
	// The restores hold a database Herald takes as it is.
	for _, db := range []string{sqlite, restored} {
		out, err := exec.Command(bin, "migrate", "status", "--db", db).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "pending:  none") {
			t.Errorf("the restored %s: %v\n%s", db, err, out)
		}
	}
}
