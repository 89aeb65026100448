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

// An endpoint of one app turned off or on again drops that app's cached
// endpoints and sends its publishes being stored back to be matched, and
// leaves every other app's alone: an app toggling its endpoints made every
// app's publishes match again, up to maxStaleRounds times and then fail.
// A notice without an app, from a replica of an earlier version, still
// drops every app's.
func TestPeerEndpoint_TouchesOnlyItsApp(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		notice       EndpointNotice
		app          string
		othersStayed bool
	}{
		{EndpointTurnedOff, "app_noisy", true},
		{EndpointReenabled, "app_noisy", true},
		{EndpointUpdated, "app_noisy", true},
		{EndpointTurnedOff, "", false},
		{EndpointReenabled, "", false},
	} {
		t.Run(fmt.Sprintf("%c %q", tc.notice, tc.app), func(t *testing.T) {
			e := &Engine{subs: newSubscriptions(time.Minute, now), configs: newEndpointConfigs(time.Minute, now, nil, nil),
				sched: &scheduler{wake: make(chan struct{}, 1)}}
			snaps := make(map[string]subsSnapshot)
			for _, app := range []string{"app_noisy", "app_quiet"} {
				_, l := e.subs.snapshot(app)
				l.subs = []Subscriber{{EndpointID: "ep_of_" + app}}
				e.subs.store(l)
				snaps[app], _ = e.subs.snapshot(app)
			}
			e.PeerEndpoint(tc.notice, tc.app, "ep_of_app_noisy")
			if e.subs.current("app_noisy", snaps["app_noisy"]) {
				t.Error("the app whose endpoint changed still publishes against its old endpoints")
			}
			_, load := e.subs.snapshot("app_quiet")
			if stayed := e.subs.current("app_quiet", snaps["app_quiet"]) && load == nil; stayed != tc.othersStayed {
				t.Errorf("another app's endpoints stayed cached and current: %v, want %v", stayed, tc.othersStayed)
			}
		})
	}
}
