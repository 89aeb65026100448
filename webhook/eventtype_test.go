package webhook

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/heraldhq/herald/fault"
)

// wantFault fails t unless err is a BAD_USER_INPUT *fault.Error for field.
func wantFault(t *testing.T, err error, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want a BAD_USER_INPUT fault for %q", field)
	}
	var f *fault.Error
	if !errors.As(err, &f) {
		t.Fatalf("got %T %v, want a *fault.Error for %q", err, err, field)
	}
	if f.Code != fault.BadUserInput {
		t.Errorf("code = %s, want %s (%v)", f.Code, fault.BadUserInput, err)
	}
	if f.Field != field {
		t.Errorf("field = %q, want %q (%v)", f.Field, field, err)
	}
	if f.Message == "" {
		t.Errorf("fault for %q has an empty message", field)
	}
}

func TestValidEventTypeName(t *testing.T) {
	seg := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"two segments", "order.created", true},
		{"three segments", "order.item.added", true},
		{"underscore", "email.link_clicked", true},
		{"hyphen", "email.link-clicked", true},
		{"digits", "v2.order9.created", true},
		{"segment starting with digit", "order.1st", true},
		{"exactly max length", seg(MaxEventTypeLen-2) + ".b", true},
		{"one over max length", seg(MaxEventTypeLen-1) + ".b", false},
		{"empty", "", false},
		{"single segment", "order", false},
		{"upper case", "Order.created", false},
		{"empty middle segment", "order..created", false},
		{"leading dot", ".order.created", false},
		{"trailing dot", "order.created.", false},
		{"segment starting with underscore", "order._created", false},
		{"segment starting with hyphen", "-order.created", false},
		{"space", "order. created", false},
		{"wildcard", "*", false},
		{"prefix pattern", "order.*", false},
		{"trailing newline", "order.created\n", false},
		{"slash", "order/created", false},
		{"non-ASCII letter", "ordér.created", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidEventTypeName(tt.in); got != tt.want {
				t.Errorf("ValidEventTypeName(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestCheckEventTypeName_FaultNamesField(t *testing.T) {
	if err := CheckEventTypeName("input.name", "order.created"); err != nil {
		t.Fatalf("valid name: %v", err)
	}
	wantFault(t, CheckEventTypeName("input.name", "Order"), "input.name")
}

func TestValidPattern(t *testing.T) {
	tests := []struct {
		pattern string
		want    bool
	}{
		{"*", true},
		{"order.created", true},
		{"order.*", true},
		{"order.item.*", true},
		{"email.link_clicked", true},
		{strings.Repeat("a", MaxEventTypeLen-2) + ".*", true},
		{strings.Repeat("a", MaxEventTypeLen-1) + ".*", false},
		{"", false},
		{"order", false},
		{".*", false},
		{"**", false},
		{"*.*", false},
		{"*.created", false},
		{"order.*.created", false},
		{"order*", false},
		{"order.**", false},
		{"order.*.*", false},
		{"Order.*", false},
		{"order..*", false},
		{" *", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.pattern), func(t *testing.T) {
			if got := ValidPattern(tt.pattern); got != tt.want {
				t.Errorf("ValidPattern(%q) = %v, want %v", tt.pattern, got, tt.want)
			}
		})
	}
}

func TestIsWildcard(t *testing.T) {
	for p, want := range map[string]bool{
		"*": true, "order.*": true, "order.item.*": true,
		"order.created": false, "": false,
	} {
		if got := IsWildcard(p); got != want {
			t.Errorf("IsWildcard(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "order.created", true},
		// Herald's own reports about endpoints go only to endpoints that
		// ask for them by name or prefix, never to "*".
		{"*", "webhook.failed", false},
		{"*", "webhook.disabled", false},
		{"*", "webhooks.sent", true},
		{"webhook.*", "webhook.failed", true},
		{"webhook.failed", "webhook.failed", true},
		{"order.created", "order.created", true},
		{"order.created", "order.updated", false},
		{"order.created", "order.created.v2", false},
		{"order.*", "order.created", true},
		{"order.*", "order.item.added", true},
		{"order.*", "orders.created", false},
		{"order.*", "order", false},
		{"order.*", "neworder.created", false},
		{"order.item.*", "order.item.added", true},
		{"order.item.*", "order.created", false},
		{"order.item.*", "order.items.added", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.name, func(t *testing.T) {
			if got := Match(tt.pattern, tt.name); got != tt.want {
				t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
			}
		})
	}
}

func TestMatchAny(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		event    string
		want     bool
	}{
		{"no patterns", nil, "order.created", false},
		{"only non-matching", []string{"order.updated", "contact.*"}, "order.created", false},
		{"last pattern matches", []string{"contact.*", "order.created"}, "order.created", true},
		{"prefix matches", []string{"email.sent", "order.*"}, "order.created", true},
		{"wildcard matches", []string{"email.sent", "*"}, "order.created", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MatchAny(tt.patterns, tt.event); got != tt.want {
				t.Errorf("MatchAny(%q, %q) = %v, want %v", tt.patterns, tt.event, got, tt.want)
			}
		})
	}
}

func TestOverlap(t *testing.T) {
	tests := []struct {
		name string
		a, b []string
		want bool
	}{
		{"wildcard overlaps exact", []string{"*"}, []string{"order.created"}, true},
		{"wildcard overlaps prefix", []string{"*"}, []string{"order.*"}, true},
		{"wildcard overlaps wildcard", []string{"*"}, []string{"*"}, true},
		{"wildcard does not overlap a reserved type", []string{"*"}, []string{"webhook.failed"}, false},
		{"wildcard does not overlap the reserved prefix", []string{"*"}, []string{"webhook.*"}, false},
		{"reserved prefix overlaps a reserved type", []string{"webhook.*"}, []string{"webhook.disabled"}, true},
		{"prefix overlaps exact below it", []string{"order.*"}, []string{"order.created"}, true},
		{"prefix overlaps deeper prefix", []string{"order.*"}, []string{"order.item.*"}, true},
		{"prefix overlaps same prefix", []string{"order.*"}, []string{"order.*"}, true},
		{"prefix does not overlap longer segment name", []string{"order.*"}, []string{"orders.created"}, false},
		{"prefix does not overlap longer segment prefix", []string{"order.*"}, []string{"orders.*"}, false},
		{"sibling prefixes do not overlap", []string{"order.item.*"}, []string{"order.payment.*"}, false},
		{"deeper prefix does not overlap shallower exact", []string{"order.item.*"}, []string{"order.created"}, false},
		{"equal exact names overlap", []string{"order.created"}, []string{"order.created"}, true},
		{"different exact names do not overlap", []string{"order.created"}, []string{"order.updated"}, false},
		{"exact name is not a prefix of another", []string{"order.created"}, []string{"order.created.v2"}, false},
		{"any pair is enough", []string{"email.sent", "contact.*"}, []string{"order.created", "contact.deleted"}, true},
		{"empty list overlaps nothing", nil, []string{"*"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Overlap(tt.a, tt.b); got != tt.want {
				t.Errorf("Overlap(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
			if got := Overlap(tt.b, tt.a); got != tt.want {
				t.Errorf("Overlap(%q, %q) = %v, want %v (not symmetric)", tt.b, tt.a, got, tt.want)
			}
		})
	}
}

func TestCheckPatterns_DedupesKeepingFirstOccurrenceOrder(t *testing.T) {
	got, err := CheckPatterns("input.eventTypes", []string{"order.*", "email.sent", "order.*", "*", "email.sent"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"order.*", "email.sent", "*"}
	if !slices.Equal(got, want) {
		t.Errorf("CheckPatterns = %q, want %q", got, want)
	}
}

func TestCheckPatterns_AcceptsLimit(t *testing.T) {
	in := make([]string, 256)
	for i := range in {
		in[i] = fmt.Sprintf("order.e%d", i)
	}
	got, err := CheckPatterns("eventTypes", in)
	if err != nil {
		t.Fatalf("256 patterns: %v", err)
	}
	if len(got) != 256 {
		t.Errorf("got %d patterns, want 256", len(got))
	}
}

func TestCheckPatterns_RejectsWithFieldName(t *testing.T) {
	tooMany := make([]string, 257)
	for i := range tooMany {
		tooMany[i] = "order.created" // duplicates still count toward the limit
	}
	tests := []struct {
		name     string
		patterns []string
	}{
		{"nil", nil},
		{"empty", []string{}},
		{"too many", tooMany},
		{"empty string", []string{"order.created", ""}},
		{"single segment", []string{"order"}},
		{"upper case", []string{"Order.Created"}},
		{"suffix wildcard", []string{"*.created"}},
		{"inner wildcard", []string{"order.*.created"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CheckPatterns("input.eventTypes", tt.patterns)
			wantFault(t, err, "input.eventTypes")
			if got != nil {
				t.Errorf("CheckPatterns returned %q with an error", got)
			}
		})
	}
}
