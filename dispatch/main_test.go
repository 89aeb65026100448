package dispatch_test

import (
	"testing"

	"github.com/heraldhq/herald/internal/pgtest"
)

// TestMain stops the PostgreSQL clusters the tests started.
func TestMain(m *testing.M) { pgtest.Main(m) }
