package pgnotify_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/heraldhq/herald/internal/pgtest"
	"github.com/heraldhq/herald/pgnotify"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// recorder is a Handler that keeps what it gets.
type recorder struct {
	mu     sync.Mutex
	got    []pgnotify.Notification
	resets int
	wake   chan struct{}
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{}, 1)} }

func (r *recorder) HandleNotification(n pgnotify.Notification) {
	r.mu.Lock()
	r.got = append(r.got, n)
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) HandleReset() {
	r.mu.Lock()
	r.resets++
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// wait waits until cond holds for what r got, failing after timeout.
func (r *recorder) wait(t *testing.T, timeout time.Duration, what string, cond func(got []pgnotify.Notification, resets int) bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		ok := cond(r.got, r.resets)
		n, resets := len(r.got), r.resets
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.wake:
		case <-deadline:
			t.Fatalf("timed out waiting for %s: got %d messages, %d resets", what, n, resets)
		}
	}
}

// replica is one process's notification machinery on a database.
type replica struct {
	id       string
	db       *sql.DB
	sender   *pgnotify.Sender
	listener *pgnotify.Listener
}

func newReplica(t *testing.T, dsn string, id string) *replica {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { db.Close() })
	s, err := pgnotify.NewSender(pgnotify.SenderConfig{DB: db, ReplicaID: id})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	l, err := pgnotify.NewListener(pgnotify.ListenerConfig{ConnConfig: cfg, ReplicaID: id, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l.Start()
	t.Cleanup(l.Close)
	return &replica{id: id, db: db, sender: s, listener: l}
}

func (r *replica) listen(t *testing.T, channel string) *recorder {
	t.Helper()
	rec := newRecorder()
	if err := r.listener.Handle(channel, rec); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.listener.Listening(ctx); err != nil {
		t.Fatalf("listener not listening: %v", err)
	}
	return rec
}

func TestSender_BatchesABurstAndEveryMessageArrivesInOrder(t *testing.T) {
	dsn := pgtest.New(t)
	a, b := newReplica(t, dsn, "a"), newReplica(t, dsn, "b")
	rec := b.listen(t, "herald_test")
	other := b.listen(t, "herald_other")
	const n = 20000
	for i := range n {
		if err := a.sender.Send("herald_test", fmt.Sprintf(`{"i":%d,"pad":"%s"}`, i, strings.Repeat("x", i%100))); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 0 {
			if err := a.sender.Send("herald_other", fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	rec.wait(t, 30*time.Second, "every message", func(got []pgnotify.Notification, _ int) bool { return len(got) >= n })
	other.wait(t, 10*time.Second, "the other channel's messages", func(got []pgnotify.Notification, _ int) bool { return len(got) >= n/1000 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i, m := range rec.got {
		want := fmt.Sprintf(`{"i":%d,"pad":"%s"}`, i, strings.Repeat("x", i%100))
		if m.Payload != want || m.Sender != "a" || m.Channel != "herald_test" {
			t.Fatalf("message %d = %+v, want %s from a", i, m, want)
		}
	}
	if len(rec.got) != n || rec.resets != 0 {
		t.Fatalf("got %d messages and %d resets, want %d and none", len(rec.got), rec.resets, n)
	}
	st := a.sender.Stats()
	t.Logf("%d messages in %d notifications by %d statements", st.Messages, st.Notifications, st.Flushes)
	if st.Notifications*20 > st.Messages || st.Dropped != 0 {
		t.Errorf("%d messages took %d notifications (%d dropped): not batched", st.Messages, st.Notifications, st.Dropped)
	}
}

func TestSender_StaysUnderThePayloadLimitWithLargeMessages(t *testing.T) {
	dsn := pgtest.New(t)
	a, b := newReplica(t, dsn, "a"), newReplica(t, dsn, "b")
	rec := b.listen(t, "herald_test")
	// A raw listener sees the notifications themselves.
	ctx := context.Background()
	raw, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close(ctx)
	if _, err := raw.Exec(ctx, "LISTEN herald_test"); err != nil {
		t.Fatal(err)
	}
	sizes := []int{pgnotify.MaxMessage, 1, 4000, 3999, 7000, 0, 2500, pgnotify.MaxMessage - 1, 100}
	var sent []string
	for i := range 300 {
		p := fmt.Sprintf("%04d", i) + strings.Repeat("é", max(0, sizes[i%len(sizes)]-4)/2)
		sent = append(sent, p)
		if err := a.sender.Send("herald_test", p); err != nil {
			t.Fatal(err)
		}
	}
	rec.wait(t, 30*time.Second, "every large message", func(got []pgnotify.Notification, _ int) bool { return len(got) >= len(sent) })
	rec.mu.Lock()
	for i, m := range rec.got {
		if m.Payload != sent[i] {
			t.Fatalf("message %d differs (%d bytes, want %d)", i, len(m.Payload), len(sent[i]))
		}
	}
	rec.mu.Unlock()
	st := a.sender.Stats()
	largest := 0
	for range st.Notifications {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		n, err := raw.WaitForNotification(wctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		largest = max(largest, len(n.Payload))
	}
	t.Logf("%d messages in %d notifications, the largest %d bytes", st.Messages, st.Notifications, largest)
	if largest > pgnotify.MaxPayload || st.Dropped != 0 {
		t.Errorf("largest notification %d bytes, %d dropped", largest, st.Dropped)
	}
}

func TestListener_IgnoresItsOwnReplica(t *testing.T) {
	dsn := pgtest.New(t)
	a, b := newReplica(t, dsn, "a"), newReplica(t, dsn, "b")
	own := a.listen(t, "herald_test")
	if err := a.sender.Send("herald_test", "from a"); err != nil {
		t.Fatal(err)
	}
	if err := b.sender.Send("herald_test", "from b"); err != nil {
		t.Fatal(err)
	}
	own.wait(t, 10*time.Second, "b's message", func(got []pgnotify.Notification, _ int) bool { return len(got) >= 1 })
	// a's message was sent first; had it been delivered it would be first.
	own.mu.Lock()
	defer own.mu.Unlock()
	if len(own.got) != 1 || own.got[0].Payload != "from b" {
		t.Fatalf("a got %+v, want only b's message", own.got)
	}
}

func TestSendTx_DeliversOnCommitOnly(t *testing.T) {
	dsn := pgtest.New(t)
	a, b := newReplica(t, dsn, "a"), newReplica(t, dsn, "b")
	rec := b.listen(t, "herald_test")
	ctx := context.Background()
	for _, commit := range []bool{false, true} {
		tx, err := a.db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var msgs []pgnotify.Message
		for i := range 100 {
			msgs = append(msgs, pgnotify.Message{Channel: "herald_test", Payload: fmt.Sprintf("commit=%v %d", commit, i)})
		}
		if err := a.sender.SendTx(ctx, tx, msgs...); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	rec.wait(t, 10*time.Second, "the committed messages", func(got []pgnotify.Notification, _ int) bool { return len(got) >= 100 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i, m := range rec.got {
		if m.Payload != fmt.Sprintf("commit=true %d", i) {
			t.Fatalf("message %d = %q", i, m.Payload)
		}
	}
}

func TestListener_ReconnectsAfterARestartAndSignalsTheGap(t *testing.T) {
	cluster := pgtest.Start(t)
	dsn := cluster.New(t)
	a, b := newReplica(t, dsn, "a"), newReplica(t, dsn, "b")
	rec := b.listen(t, "herald_test")
	if err := a.sender.Send("herald_test", "before"); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, 10*time.Second, "the first message", func(got []pgnotify.Notification, _ int) bool { return len(got) == 1 })

	cluster.Restart(t)
	rec.wait(t, 30*time.Second, "a reset after the restart", func(_ []pgnotify.Notification, resets int) bool { return resets >= 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.listener.Listening(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.sender.Send("herald_test", "after"); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, 30*time.Second, "a message sent after the restart", func(got []pgnotify.Notification, _ int) bool {
		return len(got) >= 2 && got[len(got)-1].Payload == "after"
	})
}

// TestListener_SignalsASkippedNumber sends envelopes by hand: a replica's
// notifications numbered 1, 2, 4 make one reset, before the message of 4.
func TestListener_SignalsASkippedNumber(t *testing.T) {
	dsn := pgtest.New(t)
	b := newReplica(t, dsn, "b")
	rec := b.listen(t, "herald_test")
	for _, seq := range []int{1, 2, 4} {
		if _, err := b.db.Exec("SELECT pg_notify('herald_test', $1)", fmt.Sprintf("1 x %d\n1:%d", seq, seq)); err != nil {
			t.Fatal(err)
		}
	}
	rec.wait(t, 10*time.Second, "three messages", func(got []pgnotify.Notification, _ int) bool { return len(got) == 3 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.resets != 1 {
		t.Fatalf("%d resets, want 1", rec.resets)
	}
}
