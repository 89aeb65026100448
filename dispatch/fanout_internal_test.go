package dispatch

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/heraldhq/herald/ids"
	"github.com/heraldhq/herald/webhook"
)

// laterForTest returns the fan-out a publish of three events to 100
// endpoints leaves for parts, the first 20 deliveries stored at once, as
// newDeliveries leaves it, and the sequence as the publish goes on with
// it. The endpoints' orderings, flow control and filters' failures vary,
// one event is scheduled and one has an ordering key that needs escaping.
func laterForTest(t testing.TB) (*laterFanout, *ids.Sequence) {
	t.Helper()
	now := time.Date(2026, 12, 7, 10, 20, 5, 123456789, time.UTC)
	due := now.Add(time.Hour).In(time.FixedZone("x", 3600)) // a zone other than UTC
	subs := make([]Subscriber, 100)
	for k := range subs {
		subs[k] = Subscriber{EndpointID: fmt.Sprintf("ep_%026d", k), Ordering: string([]webhook.Ordering{webhook.OrderNone, webhook.OrderByKey, webhook.OrderStrict}[k%3]),
			Controlled: k%7 == 0}
	}
	inputs := []EventInput{
		{EventType: "order.created", OrderingKey: "customer <42> & \"co\"\n"},
		{EventType: "order.paid", DeliverAt: &due},
		{EventType: "invoice.voided"},
	}
	seq := ids.NewSequence(now)
	events := make([]*EventRow, len(inputs))
	matches := make([][]match, len(inputs))
	for i, in := range inputs {
		events[i] = &EventRow{ID: seq.Next(ids.Event), AppID: "app_1", EventType: in.EventType, DeliverAt: in.DeliverAt, CreatedAt: now}
		for k := range subs {
			m := match{k: k}
			if k > 60 && k%5 != 0 {
				m.failed = tooExpensiveReason + " \u2028 \x01"
			}
			matches[i] = append(matches[i], m)
		}
	}
	req := &publishReq{appID: "app_1", inputs: inputs, snap: subsSnapshot{subs: subs}, traceParent: "00-trace"}
	const room = 20
	for range room {
		seq.Next(ids.Delivery)
	}
	f := newLaterFanout(req, events, matches, *seq, now, room)
	n := 0
	for i := range matches {
		for j := range matches[i] {
			if n++; n > room {
				f.add(i, j)
			}
		}
	}
	seq.Skip(len(f.refs))
	f.arrange(len(subs))
	return f, seq
}

// wantPart is the storedPart of rows, grouped into runs the plain way,
// each row at its place after start.
func wantPart(rows []DeliveryRow, places []uint32, start string) storedPart {
	return storedPart{Version: 3, Start: start, Runs: runsOf(rows, func(run *storedRun, i int) {
		run.Places = append(run.Places, places[i])
		run.Endpoints = append(run.Endpoints, rows[i].EndpointID)
	})}
}

// runsOf groups rows into runs the plain way; add puts row i in its run.
func runsOf(rows []DeliveryRow, add func(run *storedRun, i int)) []storedRun {
	var runs []storedRun
	for i := range rows {
		r := &rows[i]
		if i == 0 || !sameRun(&rows[i-1], r) {
			runs = append(runs, storedRun{EventID: r.EventID, EventType: r.EventType, CreatedAt: r.CreatedAt, DueAt: r.DueAt,
				OrderingKey: r.OrderingKey, Failed: r.Failed})
		}
		add(&runs[len(runs)-1], i)
	}
	return runs
}

// The parts of a fan-out are written as encoding/json would write their
// runs (the same fields, the same values), and what is stored reads back
// as the deliveries each part builds when the publisher stores it: the
// IDs the publish's sequence skipped, each endpoint's in the order of its
// events, in parts named in the order they are stored.
func TestSplitParts_StoresWhatThePartsBuildAndReadsItBack(t *testing.T) {
	f, seq := laterForTest(t)
	skipped := f.seq
	wantIDs := make(map[string]string, len(f.refs)) // delivery ID → event ID, event after event
	for _, r := range slices.SortedFunc(slices.Values(f.refs), func(a, b laterRef) int { return int(a.idx - b.idx) }) {
		wantIDs[skipped.Next(ids.Delivery)] = f.events[r.ev].ID
	}
	parts, stored, err := splitParts(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 3 || len(stored) != 3 {
		t.Fatalf("%d parts, %d stored, want 3 of each (280 deliveries)", len(parts), len(stored))
	}
	var all, names []string
	lastOf := make(map[string]string) // endpoint → its last delivery's ID so far
	for k, s := range stored {
		rows, handOff, events := parts[k].deliveries()
		if parts[k].id != s.ID {
			t.Fatalf("part %d is named %s and stored as %s", k, parts[k].id, s.ID)
		}
		names = append(names, s.ID)
		places := make([]uint32, len(rows))
		for i, r := range f.refs[parts[k].from : parts[k].from+parts[k].n] {
			places[i] = uint32(r.idx)
		}
		first := f.seq
		want := wantPart(rows, places, first.Next(ids.Delivery))
		wantJSON, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		var got, wantAny any
		if err := json.Unmarshal(s.Deliveries, &got); err != nil {
			t.Fatalf("part %d is not JSON: %v\n%s", k, err, s.Deliveries)
		}
		if err := json.Unmarshal(wantJSON, &wantAny); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, wantAny) {
			t.Fatalf("part %d encoded as\n%s\nwant, as encoding/json writes it,\n%s", k, s.Deliveries, wantJSON)
		}
		back, err := decodePart(s)
		if err != nil {
			t.Fatal(err)
		}
		sameRows(t, back.rows, rows)
		for i, r := range rows {
			all = append(all, r.ID)
			if ev, ok := wantIDs[r.ID]; !ok || ev != r.EventID {
				t.Fatalf("part %d delivery %d of event %s has ID %s, which the publish's sequence made for event %q", k, i, r.EventID, r.ID, ev)
			}
			if last := lastOf[r.EndpointID]; last >= r.ID {
				t.Fatalf("endpoint %s gets delivery %s after %s", r.EndpointID, r.ID, last)
			}
			lastOf[r.EndpointID] = r.ID
			sub := f.req.snap.subs[f.matches[f.refs[parts[k].from+i].ev][f.refs[parts[k].from+i].m].k]
			if want := r.Failed == "" && r.DueAt.IsZero() && !sub.Controlled; handOff[i] != want {
				t.Fatalf("part %d delivery %d (%+v) handed off %v, want %v", k, i, r, handOff[i], want)
			}
			if handOff[i] && (events[r.EventID] == nil || events[r.EventID].msg.ID != r.EventID) {
				t.Fatalf("part %d delivery %d handed off without its event's message", k, i)
			}
		}
	}
	if len(all) != 280 || len(slices.Compact(slices.Sorted(slices.Values(all)))) != len(all) {
		t.Fatalf("%d delivery IDs, distinct %v; want 280 distinct", len(all), len(slices.Compact(slices.Sorted(slices.Values(all)))) == len(all))
	}
	if !slices.IsSorted(names) {
		t.Fatalf("parts named %v: not in the order they are stored in", names)
	}
	if last := slices.Max(all); seq.Next(ids.Delivery) <= last {
		t.Fatalf("the publish's sequence goes on with an ID before the parts' last delivery %s", last)
	}
}

// A part of a call of ten events to a thousand endpoints holds the
// deliveries of few endpoints, whose index pages its transaction writes.
func TestSplitParts_APartHoldsFewEndpoints(t *testing.T) {
	f := callOfTen()
	parts, _, err := splitParts(f)
	if err != nil {
		t.Fatal(err)
	}
	for k, p := range parts {
		rows, _, _ := p.deliveries()
		endpoints := make(map[string]bool)
		for _, r := range rows {
			endpoints[r.EndpointID] = true
		}
		if len(endpoints) > 14 {
			t.Fatalf("part %d of %d deliveries goes to %d endpoints; want at most 14 (13 and a part)", k, len(rows), len(endpoints))
		}
	}
}

// A fan-out's part takes few bytes a delivery: those are written in the
// transaction that stores the publish, which other apps' publishes wait
// for on SQLite.
func TestSplitParts_StoresAFewBytesADelivery(t *testing.T) {
	f := callOfTen()
	_, stored, err := splitParts(f)
	if err != nil {
		t.Fatal(err)
	}
	size := 0
	for _, s := range stored {
		size += len(s.Deliveries)
	}
	// The first version took about 300 bytes a delivery here, the second,
	// with each delivery's ID, 95; with places about 68, of which a
	// run's event and failure's reason, written again in each part they
	// reach (ten events a part), are a third.
	if perRow := size / len(f.refs); perRow > 75 {
		t.Errorf("the parts of %d deliveries take %d bytes, %d a delivery; want at most 75", len(f.refs), size, perRow)
	}
}

// callOfTen is the later fan-out of a call of ten events to a thousand
// endpoints, all but one in a hundred cut short by their filters, as
// TestNoisyNeighbour's noisy app makes.
func callOfTen() *laterFanout {
	now := time.Date(2026, 12, 7, 10, 20, 5, 123456789, time.UTC)
	subs := make([]Subscriber, 1000)
	for k := range subs {
		subs[k] = Subscriber{EndpointID: ids.NewAt(ids.Endpoint, now)}
	}
	seq := ids.NewSequence(now)
	inputs := make([]EventInput, 10)
	events := make([]*EventRow, 10)
	matches := make([][]match, 10)
	for i := range inputs {
		inputs[i] = EventInput{EventType: "order.created"}
		events[i] = &EventRow{ID: seq.Next(ids.Event), AppID: "app_1", EventType: "order.created", CreatedAt: now}
		for k := range subs {
			m := match{k: k}
			if k%100 != 0 {
				m.failed = tooExpensiveReason
			}
			matches[i] = append(matches[i], m)
		}
	}
	req := &publishReq{appID: "app_1", inputs: inputs, snap: subsSnapshot{subs: subs}}
	f := newLaterFanout(req, events, matches, *seq, now, 0)
	for i := range matches {
		for j := range matches[i] {
			f.add(i, j)
		}
	}
	f.arrange(len(subs))
	return f
}

// Parts stored by an earlier Herald are read as they were written: in the
// first version an array of storedRow each, in the second runs whose "r"
// holds each delivery's ID and its endpoint's.
func TestDecodePart_ReadsEarlierVersions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		encode func(rows []DeliveryRow) any
	}{
		{"first", func(rows []DeliveryRow) any {
			enc := make([]storedRow, len(rows))
			for i, r := range rows {
				enc[i] = storedRow{ID: r.ID, EventID: r.EventID, EndpointID: r.EndpointID, EventType: r.EventType,
					CreatedAt: r.CreatedAt, DueAt: r.DueAt, OrderingKey: r.OrderingKey, Failed: r.Failed}
			}
			return enc
		}},
		{"second", func(rows []DeliveryRow) any {
			return storedPart{Version: 2, Runs: runsOf(rows, func(run *storedRun, i int) {
				run.Rows = append(run.Rows, rows[i].ID, rows[i].EndpointID)
			})}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := laterForTest(t)
			rows, _ := f.build(0, len(f.refs), nil, nil)
			b, err := json.Marshal(tc.encode(rows))
			if err != nil {
				t.Fatal(err)
			}
			p, err := decodePart(StoredPart{ID: rows[0].ID, AppID: "app_1", Deliveries: b, CreatedAt: rows[0].CreatedAt})
			if err != nil {
				t.Fatal(err)
			}
			sameRows(t, p.rows, rows)
		})
	}
}

// sameRows fails unless got holds the deliveries of want, times equal
// whatever their zone.
func sameRows(t *testing.T, got, want []DeliveryRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d deliveries read back, want %d", len(got), len(want))
	}
	for i, r := range got {
		w := want[i]
		if !r.CreatedAt.Equal(w.CreatedAt) || !r.DueAt.Equal(w.DueAt) {
			t.Fatalf("row %d: times %v %v, want %v %v", i, r.CreatedAt, r.DueAt, w.CreatedAt, w.DueAt)
		}
		r.CreatedAt, r.DueAt, w.CreatedAt, w.DueAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if !reflect.DeepEqual(r, w) {
			t.Fatalf("row %d read back as %+v, want %+v", i, r, w)
		}
	}
}

// BenchmarkSplitParts encodes the parts of a call of ten events to a
// thousand endpoints, all but one in a hundred cut short by their filters.
func BenchmarkSplitParts(b *testing.B) {
	f := callOfTen()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := splitParts(f); err != nil {
			b.Fatal(err)
		}
	}
}
