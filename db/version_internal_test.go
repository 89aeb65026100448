package db

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/heraldhq/herald/ent/migrate"
)

// schemaFingerprints records, for each SchemaVersion, a hash of the
// database schema ent generates: the tables, columns and indexes.
var schemaFingerprints = map[int]string{
	1: "339727b4a510b09203bd61e08d8f7be85a198e48f5fe2d1a67ddde1727e208b4", // the first versioned schema: unreleased changes fold into it (with events.trace_parent and delivery_stats)
	2: "d81eb33be1d88e27b077eb9b5aad1c9cb54d266e42da47c9343371a33a3aa41e", // app limits, key session scopes, test events, TEST triggers; endpoints.type, destination and transformation; endpoints.signature_scheme, public_key, tls, certificate_expires_at, certificate_warned_at, secrets_key; audit_records
}

// TestSchemaVersion_ChangesWithTheSchema fails when ent/schema changes the
// database without a new SchemaVersion: an older herald would then run
// against a schema it does not know instead of refusing it.
func TestSchemaVersion_ChangesWithTheSchema(t *testing.T) {
	migrateMu.Lock()
	h := sha256.New()
	for _, tb := range migrate.Tables {
		fmt.Fprintf(h, "table %s\n", tb.Name)
		for _, c := range tb.Columns {
			fmt.Fprintf(h, "  column %s %s null=%v unique=%v size=%d default=%v types=%v\n",
				c.Name, c.Type, c.Nullable, c.Unique, c.Size, c.Default, c.SchemaType)
		}
		for _, ix := range tb.Indexes {
			fmt.Fprintf(h, "  index %s unique=%v", ix.Name, ix.Unique)
			for _, c := range ix.Columns {
				fmt.Fprintf(h, " %s", c.Name)
			}
			fmt.Fprintf(h, " %v\n", ix.Annotation)
		}
		for _, fk := range tb.ForeignKeys {
			fmt.Fprintf(h, "  fk %s", fk.Symbol)
			for _, c := range fk.Columns {
				fmt.Fprintf(h, " %s", c.Name)
			}
			fmt.Fprintf(h, " %s %s\n", fk.RefTable.Name, fk.OnDelete)
		}
	}
	migrateMu.Unlock()
	got := hex.EncodeToString(h.Sum(nil))
	if want := schemaFingerprints[SchemaVersion]; got != want {
		t.Fatalf("the schema ent generates changed (fingerprint %s, version %d has %q):\n"+
			"bump SchemaVersion in db/version.go and record the new fingerprint in schemaFingerprints", got, SchemaVersion, want)
	}
}
