// Package fair shares the machine's cores among apps.
//
// Every API operation an app sends runs in one of its app's turns (see
// Turns.Take), and an app has a fixed number of them, by default half the
// cores (at least one): however many requests one app sends at once, and
// however costly each is to decode, parse, match against filters or
// answer, they keep at most that many cores busy, and another app's
// operation finds a core instead of waiting behind them in the Go
// scheduler's queues, whose time slice is 10 ms.
//
// An operation gives its turn back while it waits for something other
// than the CPU (see Pause): its publish's commit, a turn of one of its
// app's other limits, a test's attempt. A turn is meant for work on the
// cores, never for waiting.
package fair

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
)

// ErrWaited is returned by Take when an operation waited the longest it
// may for one of its app's turns.
var ErrWaited = errors.New("fair: no turn of the app came free in time")

// Turns hands out each app's turns on the cores. Its zero value is not
// usable; call NewTurns.
type Turns struct {
	per     int
	maxWait time.Duration

	mu   sync.Mutex
	apps map[string]*appTurns
}

// appTurns are one app's turns, with the operations that hold or wait for
// one: the entry is dropped when the last of them ends, so that the map
// holds only the apps at work.
type appTurns struct {
	sem   *semaphore.Weighted
	users int
}

// NewTurns returns turns of per operations at once for each app (half
// the cores of GOMAXPROCS, at least one, if per is 0 or less), of which an
// operation waits at most maxWait for one.
func NewTurns(per int, maxWait time.Duration) *Turns {
	if per <= 0 {
		per = DefaultPerApp()
	}
	return &Turns{per: per, maxWait: maxWait, apps: make(map[string]*appTurns)}
}

// DefaultPerApp is the default number of an app's turns: half the cores
// Go schedules on, at least one.
func DefaultPerApp() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// PerApp returns the number of operations an app runs at once.
func (t *Turns) PerApp() int { return t.per }

// Take waits for a turn of app and returns a context that carries it (for
// Pause) and the function that gives it back, to be called once the
// operation's work is done. It returns ErrWaited after maxWait, and ctx's
// error if ctx ends first.
func (t *Turns) Take(ctx context.Context, app string) (context.Context, func(), error) {
	t.mu.Lock()
	a := t.apps[app]
	if a == nil {
		a = &appTurns{sem: semaphore.NewWeighted(int64(t.per))}
		t.apps[app] = a
	}
	a.users++
	t.mu.Unlock()
	leave := func() {
		t.mu.Lock()
		if a.users--; a.users == 0 {
			delete(t.apps, app)
		}
		t.mu.Unlock()
	}
	if !a.sem.TryAcquire(1) {
		wctx, cancel := context.WithTimeout(ctx, t.maxWait)
		err := a.sem.Acquire(wctx, 1)
		cancel()
		if err != nil {
			leave()
			if ctx.Err() != nil {
				return ctx, nil, ctx.Err()
			}
			return ctx, nil, ErrWaited
		}
	}
	h := &holder{sem: a.sem}
	var once sync.Once
	return context.WithValue(ctx, holderKey{}, h), func() {
		once.Do(func() {
			h.mu.Lock()
			h.done = true
			if h.paused == 0 {
				a.sem.Release(1)
			}
			h.mu.Unlock()
			leave()
		})
	}, nil
}

// holderKey is the context key of an operation's turn.
type holderKey struct{}

// holder is an operation's turn: held, or given back by paused calls of
// Pause not yet resumed.
type holder struct {
	sem *semaphore.Weighted

	mu     sync.Mutex
	paused int
	done   bool
}

// Pause gives back the turn ctx's operation holds, if any, while the
// caller waits for something other than the CPU, and returns the function
// that takes it again, which waits for it. Pauses may overlap (fields of
// one operation resolved at once): the turn is given back at the first and
// taken again at the last resume.
func Pause(ctx context.Context) (resume func()) {
	h, _ := ctx.Value(holderKey{}).(*holder)
	if h == nil {
		return func() {}
	}
	h.mu.Lock()
	if h.paused == 0 && !h.done {
		h.sem.Release(1)
	}
	h.paused++
	h.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.paused--; h.paused == 0 && !h.done {
				// Cannot fail: without a deadline, Acquire waits for
				// the operations holding turns, which end.
				_ = h.sem.Acquire(context.Background(), 1)
			}
		})
	}
}
