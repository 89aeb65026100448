package dispatch

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// partRowsForTest returns n deliveries of two events, with every optional
// field used by some, and strings that need escaping.
func partRowsForTest(n int) []DeliveryRow {
	now := time.Date(2026, 12, 7, 10, 20, 5, 123456789, time.UTC)
	key := "customer <42> & \"co\"\n"
	empty := ""
	rows := make([]DeliveryRow, n)
	for i := range rows {
		r := DeliveryRow{ID: fmt.Sprintf("dlv_%026d", i), AppID: "app_1", EventID: fmt.Sprintf("evt_%d", i%2),
			EndpointID: fmt.Sprintf("ep_%d", i), EventType: "order.created", CreatedAt: now}
		switch i % 5 {
		case 1:
			r.DueAt = now.Add(time.Hour)
		case 2:
			r.OrderingKey = &key
		case 3:
			r.Failed = "filter: over its budget of 10000 steps \u2028 \x01"
			r.OrderingKey = &empty
		case 4:
			r.CreatedAt = now.In(time.FixedZone("x", 3600)) // a zone other than UTC
			r.DueAt = now
		}
		rows[i] = r
	}
	return rows
}

// The parts of a fan-out are written as encoding/json wrote them (the same
// fields, the same values), so that parts stored by an older Herald and by
// this one read back alike.
func TestSplitParts_EncodesAsEncodingJSONAndReadsBack(t *testing.T) {
	rows := partRowsForTest(300)
	handOff := make([]bool, len(rows))
	now := rows[0].CreatedAt
	parts, stored, err := splitParts("app_1", rows, handOff, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 3 || len(stored) != 3 {
		t.Fatalf("%d parts, %d stored, want 3 of each", len(parts), len(stored))
	}
	for k, s := range stored {
		want := make([]storedRow, len(parts[k].rows))
		for i, r := range parts[k].rows {
			want[i] = storedRow{ID: r.ID, EventID: r.EventID, EndpointID: r.EndpointID, EventType: r.EventType,
				CreatedAt: r.CreatedAt, DueAt: r.DueAt, OrderingKey: r.OrderingKey, Failed: r.Failed}
		}
		wantJSON, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		var got, wantAny any
		if err := json.Unmarshal(s.Deliveries, &got); err != nil {
			t.Fatalf("part %d is not JSON: %v", k, err)
		}
		if err := json.Unmarshal(wantJSON, &wantAny); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, wantAny) {
			for i := range got.([]any) {
				if g, w := got.([]any)[i], wantAny.([]any)[i]; !reflect.DeepEqual(g, w) {
					t.Fatalf("part %d row %d encoded as %v, want %v as encoding/json writes it", k, i, g, w)
				}
			}
			t.Fatalf("part %d: %d rows, want %d", k, len(got.([]any)), len(wantAny.([]any)))
		}
		back, err := decodePart(s)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range back.rows {
			w := parts[k].rows[i]
			if !r.CreatedAt.Equal(w.CreatedAt) || !r.DueAt.Equal(w.DueAt) {
				t.Fatalf("part %d row %d: times %v %v, want %v %v", k, i, r.CreatedAt, r.DueAt, w.CreatedAt, w.DueAt)
			}
			r.CreatedAt, r.DueAt, w.CreatedAt, w.DueAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			if !reflect.DeepEqual(r, w) {
				t.Fatalf("part %d row %d read back as %+v, want %+v", k, i, r, w)
			}
		}
	}
}

func BenchmarkSplitParts(b *testing.B) {
	rows := partRowsForTest(10000)
	for i := range rows {
		rows[i].CreatedAt, rows[i].DueAt, rows[i].Failed, rows[i].OrderingKey = rows[0].CreatedAt, time.Time{}, "", nil
	}
	handOff := make([]bool, len(rows))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := splitParts("app_1", rows, handOff, nil, rows[0].CreatedAt); err != nil {
			b.Fatal(err)
		}
	}
}
