package retention

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/db"
)

// TestPruneEndpoints_FindsAnEndpointsAttemptsByIndex asks SQLite how it
// runs the statement that deletes expired endpoints: its foreign key check
// of the attempts that might still refer to each endpoint must search an
// index, not scan every attempt.
func TestPruneEndpoints_FindsAnEndpointsAttemptsByIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, err := db.Open(ctx, db.Config{Path: filepath.Join(t.TempDir(), "herald.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rows, err := d.Write.QueryContext(ctx, "EXPLAIN QUERY PLAN "+deleteExpiredEndpoints, "app_1", time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var attempts []string
	for _, step := range plan {
		if strings.Contains(step, " attempts") {
			attempts = append(attempts, step)
		}
	}
	if len(attempts) != 1 || !strings.HasPrefix(attempts[0], "SEARCH attempts USING") || !strings.Contains(attempts[0], "(endpoint_id=?)") {
		t.Fatalf("deleting expired endpoints reads attempts with %q, want one SEARCH by an endpoint_id index; whole plan:\n%s",
			attempts, strings.Join(plan, "\n"))
	}
}
