package ids

import (
	"sort"
	"testing"
	"time"
)

func TestNew_HasPrefixAndValidBody(t *testing.T) {
	id := New(Endpoint)
	if !Valid(Endpoint, id) {
		t.Fatalf("New(%q) = %q, not valid", Endpoint, id)
	}
	if got := Prefix(id); got != Endpoint {
		t.Fatalf("Prefix(%q) = %q, want %q", id, got, Endpoint)
	}
	if Valid(Event, id) {
		t.Fatalf("Valid(%q, %q) = true, want false", Event, id)
	}
}

func TestNewAt_SortsByTime(t *testing.T) {
	base := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var got []string
	for i := 0; i < 50; i++ {
		got = append(got, NewAt(Delivery, base.Add(time.Duration(i)*time.Millisecond)))
	}
	if !sort.StringsAreSorted(got) {
		t.Fatalf("ids not sorted by time: %v", got)
	}
}

func TestNew_Unique(t *testing.T) {
	seen := make(map[string]bool)
	for i := 0; i < 10000; i++ {
		id := New(Attempt)
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}

func TestValid_RejectsMalformed(t *testing.T) {
	for _, id := range []string{"", "ep_", "ep_short", "ep-01JDZ6Q4W8X3M5N7P9R2T4V6X8", "ep_01JDZ6Q4W8X3M5N7P9R2T4V6XU", "ep_01jdz6q4w8x3m5n7p9r2t4v6x8"} {
		if Valid(Endpoint, id) {
			t.Errorf("Valid(%q) = true, want false", id)
		}
	}
}

func TestNewAt_SortsInOrderOfMakingWithinAMillisecond(t *testing.T) {
	at := time.Now()
	prev := NewAt(Delivery, at)
	for i := 0; i < 10000; i++ {
		next := NewAt(Delivery, at)
		if next <= prev {
			t.Fatalf("identifier %d (%s) does not sort after the one before (%s)", i, next, prev)
		}
		prev = next
	}
	if older := NewAt(Delivery, at.Add(-time.Second)); older >= prev || !Valid(Delivery, older) {
		t.Fatalf("an identifier stamped a second earlier (%s) does not sort first", older)
	}
}

// The deliveries of one publishing commit sort by ID in their events'
// order even while other goroutines make identifiers stamped later (the
// attempts that end meanwhile): NewAt alone makes those random within the
// commit's millisecond.
func TestSequence_SortsInOrderOfMakingWhateverElseIsMade(t *testing.T) {
	// In the past, so that the identifiers stamped later than at leave
	// the process's generator as the other tests expect it.
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	seq := NewSequence(at)
	prev := seq.Next(Delivery)
	for i := 0; i < 10000; i++ {
		NewAt(Attempt, at.Add(time.Duration(i+1)*time.Millisecond))
		next := seq.Next(Delivery)
		if next <= prev || !Valid(Delivery, next) {
			t.Fatalf("identifier %d (%s) does not sort after the one before (%s)", i, next, prev)
		}
		prev = next
	}
	if a, b := NewSequence(at).Next(Delivery), NewAt(Delivery, at.Add(time.Millisecond)); a >= b {
		t.Fatalf("a sequence's identifier (%s) does not sort before one stamped a millisecond later (%s)", a, b)
	}
}

// Skip leaves a sequence where as many calls of Next would, the carry
// into the high bits included, and a copy taken before makes the skipped
// identifiers, which AppendNext makes alike.
func TestSequence_SkipAndACopyMakeTheSameIdentifiers(t *testing.T) {
	for _, tc := range []struct {
		name string
		lo   uint64
		n    int
	}{
		{"within the low bits", 10, 300},
		{"across a carry", ^uint64(0) - 2, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seq := &Sequence{ms: 1_700_000_000_000, hi: 3, lo: tc.lo, started: true}
			made := *seq
			var want []string
			for range tc.n + 1 {
				want = append(want, made.Next(Delivery))
			}
			if !sort.StringsAreSorted(want) {
				t.Fatalf("identifiers not sorted: %v", want)
			}
			fork := *seq
			seq.Skip(tc.n)
			if got := seq.Next(Delivery); got != want[tc.n] {
				t.Fatalf("after Skip(%d), Next = %s, want %s", tc.n, got, want[tc.n])
			}
			var buf []byte
			for i := range tc.n {
				buf = fork.AppendNext(buf[:0], Delivery)
				if string(buf) != want[i] {
					t.Fatalf("identifier %d of the copy: %s, want %s", i, buf, want[i])
				}
			}
		})
	}
	// A sequence not started yet starts at random, and skips from there.
	seq := NewSequence(time.Now())
	fork := *seq
	seq.Skip(4)
	if fork.started || !seq.started {
		t.Fatalf("Skip did not start the sequence")
	}
	if a, b := seq.Next(Delivery), seq.Next(Delivery); a >= b {
		t.Fatalf("after Skip, %s then %s", a, b)
	}
}

// TestAdd_MakesWhatTheSequenceMadeAfterAnIdentifier checks that Add(id, k)
// is the identifier a Sequence made k after id, across a carry out of the
// low 64 bits too, and that Add refuses what is not an identifier.
func TestAdd_MakesWhatTheSequenceMadeAfterAnIdentifier(t *testing.T) {
	for _, lo := range []uint64{10, ^uint64(0) - 2} {
		seq := &Sequence{ms: 1_700_000_000_000, hi: 3, lo: lo, started: true}
		var made []string
		for range 8 {
			made = append(made, seq.Next(Delivery))
		}
		for k, want := range made {
			if got, ok := Add(made[0], uint64(k)); !ok || got != want {
				t.Fatalf("Add(%s, %d) = %s, %v; want %s", made[0], k, got, ok, want)
			}
		}
	}
	fresh := NewSequence(time.Now())
	first := fresh.Next(Event)
	second := fresh.Next(Event)
	if got, ok := Add(first, 1); !ok || got != second {
		t.Fatalf("Add(%s, 1) = %s, %v; want %s", first, got, ok, second)
	}
	for _, bad := range []string{"", "dlv", "dlv_", "_01JDZ6Q4W8X3M5N7P9R2T4V6X8", "dlv_01JDZ6Q4W8X3M5N7P9R2T4V6X", "dlv_81JDZ6Q4W8X3M5N7P9R2T4V6X8", "dlv_01JDZ6Q4W8X3M5N7P9R2T4V6XU"} {
		if got, ok := Add(bad, 1); ok {
			t.Errorf("Add(%q, 1) = %s, true; want false", bad, got)
		}
	}
}
