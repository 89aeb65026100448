package dispatch

import (
	"fmt"
	"log/slog"
	"testing"
	"time"
)

// A reload of an app's subscribers keeps the compiled form of each filter
// that did not change, whether the list expired or the app's endpoints
// changed, and compiles the filters that are new or changed.
func TestCompileFilters_KeepsWhatDidNotChange(t *testing.T) {
	clock := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	s := newSubscriptions(5*time.Second, func() time.Time { return clock })
	log := slog.New(slog.DiscardHandler)
	list := func() []Subscriber {
		return []Subscriber{
			{EndpointID: "ep_same", Filter: []byte(`{"data.total": {"$gt": 10}}`)},
			{EndpointID: "ep_changed", Filter: []byte(`{"data.total": {"$gt": 1}}`)},
			{EndpointID: "ep_broken", Filter: []byte(`{"data.total": {"$nope": 1}}`)},
			{EndpointID: "ep_none"},
		}
	}
	loads := 0
	load := func() []Subscriber {
		snap, l := s.snapshot("app_1")
		if l == nil {
			return snap.subs
		}
		loads++
		subs := list()
		subs[1].Filter = fmt.Appendf(nil, `{"data.total": {"$gt": %d}}`, loads) // changed at each load
		compileFilters(log, subs, l.prev)
		l.subs = subs
		s.store(l)
		return subs
	}
	first := load()
	if first[0].match == nil || first[1].match == nil || !first[2].broken || first[3].match != nil {
		t.Fatalf("first load: %+v", first)
	}
	for _, reload := range []func(){
		func() { clock = clock.Add(6 * time.Second) }, // the list expired
		func() { s.invalidate("app_1") },              // the app's endpoints changed
	} {
		reload()
		again := load()
		if again[0].match != first[0].match {
			t.Error("an unchanged filter was compiled again")
		}
		if again[1].match == nil || again[1].match == first[1].match {
			t.Error("a changed filter kept its old compiled form")
		}
		if !again[2].broken || again[2].match != nil {
			t.Error("a filter that does not compile matched again")
		}
		first = again
	}
}
