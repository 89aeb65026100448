package graph_test

import (
	"testing"

	"github.com/heraldhq/herald/internal/heraldtest"
)

func TestViewer_ReportsKeyAndApp(t *testing.T) {
	s := heraldtest.Start(t)
	var out struct {
		Viewer struct {
			IsAdmin bool
			App     struct{ ID, Name string }
		}
	}
	s.Do(s.Token, `{ viewer { isAdmin app { id name } } }`, nil).Decode(t, &out)
	if !out.Viewer.IsAdmin || out.Viewer.App.Name != "default" {
		t.Fatalf("viewer = %+v", out.Viewer)
	}
}
