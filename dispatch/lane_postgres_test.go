package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/internal/pgtest"
)

// On PostgreSQL a publish fanning out to hundreds of endpoints commits on a
// lane of its own: while its transaction waits (here for a row lock that
// another session holds on its app, as a slow disk or a busy
// table would make it wait), another app's small publish is stored and
// answered, and once the wait ends the large one is stored whole.
func TestPublish_ALargeFanOutDoesNotHoldUpAnotherAppsPublish(t *testing.T) {
	dsn := pgtest.New(t)
	s := heraldtest.Start(t, func(c *serverConfig) { c.DB = dsn })
	bigApp, big := s.NewApp("big")
	s.Do(s.Token, `mutation($id: ID!) { updateApp(id: $id, input: {limits: [{name: ENDPOINTS, limit: 300}]}) { id } }`,
		map[string]any{"id": bigApp}).Decode(t, nil)
	rc := heraldtest.NewReceiver(t, nil)
	for i := 0; i < 300; i += 20 {
		var b strings.Builder
		b.WriteString("mutation {")
		for j := i; j < i+20; j++ {
			fmt.Fprintf(&b, ` e%d: createEndpoint(input: {name: "big %d", url: %q, eventTypes: ["*"], allowDuplicate: true}) { endpoint { id } }`, j, j, rc.Hook(fmt.Sprintf("/%d", j)))
		}
		b.WriteString("}")
		s.Do(big, b.String(), nil).Decode(t, nil)
	}
	_, small := s.NewApp("small")
	s.CreateEndpoint(small, map[string]any{"url": rc.Hook("/small")})

	// Another session locks the big app's row: the large publish's event
	// references it, so its transaction waits.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // released below
	if _, err := tx.Exec(ctx, `SELECT 1 FROM apps WHERE id = $1 FOR UPDATE`, bigApp); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		body []byte
		err  error
	}
	bigDone := make(chan answer, 1)
	go func() {
		body, err := gql(s.URL, big, `mutation { publishEvent(input: {eventType: "order.created", payload: {n: 1}}) { id deliveryCount } }`, nil)
		bigDone <- answer{body, err}
	}()
	if !heraldtest.Eventually(10*time.Second, func() bool {
		var waiting int
		err := tx.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'`).Scan(&waiting)
		return err == nil && waiting > 0
	}) {
		select {
		case a := <-bigDone:
			t.Fatalf("the large publish was answered without waiting for the locked app: %v %s", a.err, a.body)
		default:
		}
		t.Fatal("the large publish's transaction never waited for the locked app")
	}

	smallDone := make(chan answer, 1)
	go func() {
		body, err := gql(s.URL, small, `mutation { publishEvent(input: {eventType: "order.created", payload: {n: 2}}) { id } }`, nil)
		smallDone <- answer{body, err}
	}()
	select {
	case a := <-smallDone:
		if a.err != nil || !strings.Contains(string(a.body), `"id":"evt_`) {
			t.Fatalf("the small publish: %v %s", a.err, a.body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("another app's small publish waited for the large publish's transaction")
	}
	select {
	case a := <-bigDone:
		t.Fatalf("the large publish was answered while its transaction had to wait: %v %s", a.err, a.body)
	default:
	}

	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-bigDone:
		var r struct {
			Data struct {
				PublishEvent struct{ DeliveryCount int }
			}
		}
		if a.err != nil || json.Unmarshal(a.body, &r) != nil || r.Data.PublishEvent.DeliveryCount != 300 {
			t.Fatalf("the large publish, once the lock was released: %v %s", a.err, a.body)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the large publish was not answered once the lock was released")
	}
}
