package dispatch_test

import (
	"context"
	"testing"

	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/dispatch"
	"github.com/heraldhq/herald/dispatch/drivertest"
	"github.com/heraldhq/herald/internal/pgtest"
)

func TestPostgresDriver_Conformance(t *testing.T) {
	drivertest.Run(t, drivertest.Config{
		Shared: true,
		New: func(t *testing.T) drivertest.Harness {
			d, err := db.Open(context.Background(), db.Config{DSN: pgtest.New(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			return drivertest.Harness{
				Client: d.Client,
				Open:   func() dispatch.Driver { return dispatch.NewPostgresDriver(d.Pool) },
			}
		},
	})
}
