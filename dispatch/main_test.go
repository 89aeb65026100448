package dispatch_test

import (
	"testing"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// TestMain removes the herald binary and stops the PostgreSQL clusters
// the tests started.
func TestMain(m *testing.M) { heraldtest.Main(m) }
