package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald/catalog"
	"github.com/heraldhq/herald/internal/heraldtest"
)

// codeBlocks returns the code blocks of a docs page in the given language.
func codeBlocks(t *testing.T, page, lang string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "docs", page))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		blocks []string
		cur    *strings.Builder
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil && line == "```"+lang:
			cur = &strings.Builder{}
		case cur != nil && strings.HasPrefix(line, "```"):
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return blocks
}

// TestDocs_CatalogPageRunsAsWritten runs docs/catalog.md: its catalog file
// imports, its GraphQL operations succeed (on a catalog the first one
// creates), and its herald commands run against a server.
func TestDocs_CatalogPageRunsAsWritten(t *testing.T) {
	bin := heraldtest.Binary(t)
	s := emptyCatalog(t)
	admin := s.As(t, s.Token)
	dir := t.TempDir()

	// The file format's example imports, as the file says.
	files := codeBlocks(t, "catalog.md", "json")
	if len(files) != 1 {
		t.Fatalf("%d JSON blocks, want the file format's example", len(files))
	}
	f, err := catalog.ParseFile([]byte(files[0]))
	if err != nil {
		t.Fatalf("the page's catalog file: %v", err)
	}
	if len(f.EventTypes) != 2 || !f.EventTypes[1].Archived {
		t.Fatalf("the page's catalog file reads as %+v", f.EventTypes)
	}
	contains(t, newCLI(t, s).runIn(files[0], "catalog", "import", "-").stdout, "2 created")

	ops := codeBlocks(t, "catalog.md", "graphql")
	if len(ops) < 5 {
		t.Fatalf("%d GraphQL blocks: did the page change?", len(ops))
	}
	var staging string
	for i, op := range ops {
		vars := map[string]any{}
		if strings.Contains(op, "$catalogId") {
			vars["catalogId"] = staging
		}
		var out struct {
			CreateCatalog struct{ ID string }
		}
		admin.Must(&out, op, vars)
		if i == 0 {
			if staging = out.CreateCatalog.ID; staging == "" {
				t.Fatalf("the page's first operation created no catalog")
			}
		}
	}

	ran := 0
	for _, block := range codeBlocks(t, "catalog.md", "sh") {
		for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
			cmd := exec.Command("bash", "-euo", "pipefail", "-c", line)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"),
				"HERALD_URL="+s.URL, "HERALD_API_KEY="+s.Token, "HERALD_CONFIG="+filepath.Join(dir, "config.json"))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s: %v\n%s", line, err, out.String())
			}
			ran++
			t.Logf("%s\n%s", line, out.String())
		}
	}
	if ran != 6 {
		t.Errorf("ran %d commands of the page, want 6: did its code blocks change?", ran)
	}
	// The export the page starts from held the default catalog's types,
	// and the import into staging brought them there.
	exported, err := os.ReadFile(filepath.Join(dir, "catalog.json"))
	if err != nil || !strings.Contains(string(exported), `"invoice.voided"`) {
		t.Errorf("catalog.json (%v):\n%s", err, exported)
	}
	contains(t, newCLI(t, s).ok("catalog", "export", "--catalog", "staging"), `"invoice.voided"`, `"invoice.paid"`)
}
