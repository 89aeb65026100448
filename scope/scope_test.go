package scope_test

import (
	"slices"
	"testing"

	"github.com/heraldhq/herald/scope"
)

func TestAllows_WriteImpliesReadAndNilIsFullAccess(t *testing.T) {
	for _, tc := range []struct {
		granted []scope.Scope
		need    scope.Scope
		want    bool
	}{
		{nil, scope.PortalSessions, true},
		{[]scope.Scope{scope.EndpointsWrite}, scope.EndpointsRead, true},
		{[]scope.Scope{scope.EndpointsRead}, scope.EndpointsWrite, false},
		{[]scope.Scope{scope.CatalogWrite}, scope.CatalogRead, true},
		{[]scope.Scope{scope.DeliveriesWrite}, scope.EventsRead, true},
		{[]scope.Scope{scope.EventsPublish}, scope.EventsRead, false},
		{[]scope.Scope{}, scope.EventsRead, false},
	} {
		if got := scope.Allows(tc.granted, tc.need); got != tc.want {
			t.Errorf("Allows(%v, %s) = %v, want %v", tc.granted, tc.need, got, tc.want)
		}
	}
	for _, s := range scope.PortalReadOnly {
		if !slices.Contains(scope.Portal, s) {
			t.Errorf("read-only portal scope %s is not a portal scope", s)
		}
	}
	for _, s := range scope.Portal {
		if s == scope.EventsPublish || s == scope.PortalSessions || s == scope.CatalogWrite {
			t.Errorf("portal sessions get %s", s)
		}
	}
}

func TestNormalize_SortsDedupesAndRefuses(t *testing.T) {
	got, err := scope.Normalize([]scope.Scope{scope.EventsRead, scope.CatalogRead, scope.EventsRead})
	if err != nil || !slices.Equal(got, []scope.Scope{scope.CatalogRead, scope.EventsRead}) {
		t.Errorf("Normalize = %v, %v", got, err)
	}
	for _, bad := range [][]scope.Scope{{}, {"EVERYTHING"}} {
		if _, err := scope.Normalize(bad); err == nil {
			t.Errorf("Normalize(%v) accepted", bad)
		}
	}
}
