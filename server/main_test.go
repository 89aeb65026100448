package server_test

import (
	"testing"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// TestMain stops the PostgreSQL clusters the tests started.
func TestMain(m *testing.M) { heraldtest.Main(m) }
