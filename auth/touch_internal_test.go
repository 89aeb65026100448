package auth

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldhq/herald/db"
)

// TestTouch_ForgetsUsesOlderThanAMinute is defect 10 of the review: the
// authenticator remembered when every key it ever saw was last used, for
// ever; with portal sessions minted by the thousand, that grows without
// bound. Entries older than the minute they hold writes back for are
// dropped.
func TestTouch_ForgetsUsesOlderThanAMinute(t *testing.T) {
	d, err := db.Open(context.Background(), db.Config{Path: filepath.Join(t.TempDir(), "herald.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	a := NewAuthenticator(d.Client, nil, 0)
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	a.now = func() time.Time { return now }
	for i := range 3000 {
		a.touch(fmt.Sprintf("key_%d", i))
	}
	now = now.Add(2 * time.Minute)
	for i := range 10 {
		a.touch(fmt.Sprintf("key_new_%d", i))
	}
	a.mu.Lock()
	n := len(a.touched)
	a.mu.Unlock()
	if n > 1100 {
		t.Fatalf("the authenticator remembers %d key uses, most over two minutes old", n)
	}
}
