package server

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/tenant"
)

// TestAppRequests_LimitIsReadAgainSafelyWhileRequestsRun takes and gives
// back turns from many goroutines while the app's limit keeps expiring, so
// that the race detector sees every path of slots run at once.
func TestAppRequests_LimitIsReadAgainSafelyWhileRequestsRun(t *testing.T) {
	ctx := tenant.System(context.Background())
	d, err := db.Open(ctx, db.Config{Path: filepath.Join(t.TempDir(), "herald.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	app, err := d.Client.App.Create().SetName("a").Save(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a := newAppRequests(d.Client, 10*time.Second)
	var clock atomic.Int64
	start := time.Now()
	a.now = func() time.Time { // every reading is past the last one's TTL
		return start.Add(time.Duration(clock.Add(1)) * appLimitTTL)
	}
	v := tenant.Viewer{AppID: app.ID}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				release, err := a.acquire(context.Background(), v, false)
				if err != nil {
					t.Error(err)
					return
				}
				release()
			}
		})
	}
	wg.Wait()
}
