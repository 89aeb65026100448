package fair

import (
	"context"
	"errors"
	"testing"
	"time"
)

// taken reports whether Take gets a turn of app within a short wait.
func taken(t *testing.T, tr *Turns, app string) (func(), bool) {
	t.Helper()
	_, release, err := tr.Take(context.Background(), app)
	if errors.Is(err, ErrWaited) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return release, true
}

func TestTake_AnAppHasItsTurnsAndNoMore(t *testing.T) {
	tr := NewTurns(2, 20*time.Millisecond)
	r1, ok1 := taken(t, tr, "a")
	r2, ok2 := taken(t, tr, "a")
	if !ok1 || !ok2 {
		t.Fatal("an app with two turns did not get two")
	}
	if _, ok := taken(t, tr, "a"); ok {
		t.Fatal("an app got a third turn of two")
	}
	rb, ok := taken(t, tr, "b")
	if !ok {
		t.Fatal("another app waited for the first one's turns")
	}
	rb()
	r1()
	r1() // giving a turn back twice gives it back once
	r3, ok := taken(t, tr, "a")
	if !ok {
		t.Fatal("a turn given back was not taken again")
	}
	if _, ok := taken(t, tr, "a"); ok {
		t.Fatal("a turn given back twice counted twice")
	}
	r2()
	r3()
	if n := len(tr.apps); n != 0 {
		t.Errorf("%d apps kept with no operation at work; want none", n)
	}
}

func TestTake_EndsWithTheCallersContext(t *testing.T) {
	tr := NewTurns(1, time.Minute)
	release, _ := taken(t, tr, "a")
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, _, err := tr.Take(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Take with an ended context: %v, want its error", err)
	}
	if n := tr.apps["a"].users; n != 1 {
		t.Errorf("%d users of the app after a wait that ended; want 1", n)
	}
}

func TestPause_GivesTheTurnBackUntilResumed(t *testing.T) {
	tr := NewTurns(1, 20*time.Millisecond)
	ctx, release, err := tr.Take(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	resume1 := Pause(ctx)
	resume2 := Pause(ctx) // overlapping pauses of one operation
	other, ok := taken(t, tr, "a")
	if !ok {
		t.Fatal("a paused operation kept its turn")
	}
	resume1()
	resumed := make(chan struct{})
	go func() {
		resume2() // the last resume waits for the turn
		close(resumed)
	}()
	select {
	case <-resumed:
		t.Fatal("an operation resumed while another held the app's only turn")
	case <-time.After(20 * time.Millisecond):
	}
	other()
	<-resumed
	if _, ok := taken(t, tr, "a"); ok {
		t.Fatal("a resumed operation did not hold the turn again")
	}
	release()
	last, ok := taken(t, tr, "a")
	if !ok {
		t.Fatal("the turn was not given back at the end")
	}
	last()
}

func TestPause_EndingWhilePausedGivesNothingBackTwice(t *testing.T) {
	tr := NewTurns(1, 20*time.Millisecond)
	ctx, release, err := tr.Take(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	resume := Pause(ctx)
	release() // the operation ends while paused
	resume()  // and does not take the turn again
	r1, ok := taken(t, tr, "a")
	if !ok {
		t.Fatal("an operation that ended paused kept a turn")
	}
	if _, ok := taken(t, tr, "a"); ok {
		t.Fatal("an operation that ended paused gave its turn back twice")
	}
	r1()
	Pause(context.Background())() // without a turn: nothing to do
}
