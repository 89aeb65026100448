package graph

import (
	"sort"
	"testing"
)

// TestAudit_EveryMutationIsClassified: every mutation of the schema says
// how its audit record is written (auditModes), so that a new mutation
// cannot go unaudited by omission; TestAudit_EveryMutationLeavesOneRecord
// (package server) then runs each one and counts its records.
func TestAudit_EveryMutationIsClassified(t *testing.T) {
	schema := NewExecutableSchema(Config{}).Schema()
	seen := map[string]bool{}
	var missing []string
	for _, f := range schema.Mutation.Fields {
		seen[f.Name] = true
		if _, ok := auditModes[f.Name]; !ok {
			missing = append(missing, f.Name)
		}
	}
	sort.Strings(missing)
	for _, name := range missing {
		t.Errorf("mutation %s has no audit mode: add it to auditModes (graph/audit.go) and write its record in the transaction of its change", name)
	}
	for name := range auditModes {
		if !seen[name] {
			t.Errorf("auditModes lists %s, which is not a mutation", name)
		}
	}
}
