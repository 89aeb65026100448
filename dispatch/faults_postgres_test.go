package dispatch_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/internal/pgtest"
)

// pgRefuseWrites makes PostgreSQL refuse every write to Herald's tables,
// as a full disk would, until the returned function is called.
func pgRefuseWrites(t *testing.T, dsn string) (restore func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string) {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`CREATE FUNCTION herald_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'could not extend file: No space left on device (simulated)'; END $$`)
	tables := []string{"events", "deliveries", "attempts", "endpoints"}
	for _, tbl := range tables {
		exec(fmt.Sprintf(`CREATE TRIGGER refuse_%s BEFORE INSERT OR UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION herald_refuse()`, tbl, tbl))
	}
	return func() {
		for _, tbl := range tables {
			exec(fmt.Sprintf(`DROP TRIGGER refuse_%s ON %s`, tbl, tbl))
		}
		exec(`DROP FUNCTION herald_refuse()`)
		conn.Close(ctx)
	}
}

// The same outage as TestFaults_DatabaseRefusesWritesThenRecovers, on
// PostgreSQL: leases in the rows outlive the outage, so nothing is sent
// twice while results wait.
func TestFaults_PostgresRefusesWritesThenRecovers(t *testing.T) {
	t.Parallel()
	dsn := pgtest.New(t)
	s := heraldtest.Start(t, func(c *serverConfig) { c.DB = dsn; c.PerEndpoint = 8 })
	outageScenario(t, s, func() func() { return pgRefuseWrites(t, dsn) })
}

// PostgreSQL itself goes away for 10 seconds mid-run (stopped, then
// started again): connections break, notifications stop, and Herald
// carries on where it was once the server is back.
func TestFaults_PostgresRestartsMidRun(t *testing.T) {
	t.Parallel()
	cluster := pgtest.Start(t)
	if !cluster.Throwaway() {
		t.Skip("HERALD_TEST_POSTGRES names a server these tests must not stop")
	}
	dsn := cluster.New(t)
	s := heraldtest.Start(t, func(c *serverConfig) { c.DB = dsn; c.PerEndpoint = 8 })
	outageScenario(t, s, func() func() {
		cluster.Stop(t)
		return func() { cluster.Resume(t) }
	})
}

// An endpoint created, changed or disabled through one replica is what
// the next publish through another replica fans out to, before the
// change has reached that replica's cache by notification.
func TestReplicas_PublishSeesEndpointChangesMadeThroughAnotherReplica(t *testing.T) {
	t.Parallel()
	dsn := pgtest.New(t)
	a := heraldtest.Start(t, func(c *serverConfig) { c.DB = dsn })
	b := a.Replica()
	rc := heraldtest.NewReceiver(t, nil)
	fanout := func() int {
		t.Helper()
		var out struct{ PublishEvent struct{ DeliveryCount int } }
		b.Do(a.Token, `mutation { publishEvent(input: {eventType: "order.created", payload: {}}) { deliveryCount } }`, nil).Decode(t, &out)
		return out.PublishEvent.DeliveryCount
	}
	fanout() // B caches the app's (empty) subscribers
	var ids []string
	for i := range 10 {
		id, _ := a.CreateEndpoint(a.Token, map[string]any{"name": fmt.Sprintf("ep %d", i), "url": rc.Hook(fmt.Sprintf("/%d", i)), "eventTypes": []string{"order.*"}})
		ids = append(ids, id)
		if n := fanout(); n != i+1 {
			t.Fatalf("after creating endpoint %d on A, a publish on B fanned out to %d endpoints, want %d", i+1, n, i+1)
		}
	}
	a.Do(a.Token, `mutation($id: ID!) { updateEndpoint(id: $id, input: {eventTypes: ["contact.*"]}) { id } }`, map[string]any{"id": ids[0]}).CheckErrors(t)
	if n := fanout(); n != 9 {
		t.Fatalf("after unsubscribing one on A, B fanned out to %d, want 9", n)
	}
	a.Do(a.Token, `mutation($id: ID!) { updateEndpoint(id: $id, input: {isActive: false}) { id } }`, map[string]any{"id": ids[1]}).CheckErrors(t)
	if n := fanout(); n != 8 {
		t.Fatalf("after disabling one on A, B fanned out to %d, want 8", n)
	}
	a.Do(a.Token, `mutation($id: ID!) { deleteEndpoint(id: $id) { deletedId } }`, map[string]any{"id": ids[2]}).CheckErrors(t)
	if n := fanout(); n != 7 {
		t.Fatalf("after deleting one on A, B fanned out to %d, want 7", n)
	}
}
