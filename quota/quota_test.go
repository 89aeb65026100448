package quota

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestTable_IsDocumented keeps docs/limits.md's table of app limits in
// step with Table: each limit with its default and bounds, nothing more.
func TestTable_IsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/limits.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(doc), "\n") {
		if name, ok := strings.CutPrefix(line, "| `"); ok {
			if i := strings.Index(name, "`"); i > 0 && strings.ToUpper(name[:i]) == name[:i] {
				rows[name[:i]] = line
			}
		}
	}
	for _, l := range Table {
		want := fmt.Sprintf("| `%s` | %d | %d–%d | %s |", l.Name, l.Default, l.Min, l.Max, l.Description)
		if got := rows[string(l.Name)]; got != want {
			t.Errorf("docs/limits.md has\n  %q\nwant\n  %q", got, want)
		}
		delete(rows, string(l.Name))
	}
	for name := range rows {
		if _, ok := Lookup(Name(name)); !ok && strings.Contains(rows[name], "| 0–") {
			t.Errorf("docs/limits.md documents %s, which is not a limit of Table", name)
		}
	}
}

func TestSet_KeepsBoundsAndDefaults(t *testing.T) {
	ten := 10
	set, err := Set(nil, Endpoints, &ten, "f")
	if err != nil || Of(set, Endpoints) != 10 || Of(set, EventTypes) != 500 {
		t.Fatalf("Set = %v, %v", set, err)
	}
	if set, err = Set(set, Endpoints, nil, "f"); err != nil || Of(set, Endpoints) != 100 {
		t.Fatalf("back to the default: %v, %v", set, err)
	}
	huge := 1 << 30
	if _, err := Set(nil, FilterBytes, &huge, "f"); err == nil {
		t.Fatal("a limit beyond its bounds was accepted")
	}
	if _, err := Set(nil, "NOPE", &ten, "f"); err == nil {
		t.Fatal("an unknown limit was accepted")
	}
}
