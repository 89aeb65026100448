package destination

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeConn struct {
	key    string
	closed atomic.Bool
}

func newTestPool(idle time.Duration) (*Pool[*fakeConn], *atomic.Int32) {
	closes := new(atomic.Int32)
	p := NewPool(idle, func(c *fakeConn) error {
		if c.closed.Swap(true) {
			panic("closed twice")
		}
		closes.Add(1)
		return nil
	})
	return p, closes
}

func TestPool_SharesOneConnectionPerKeyOpenedOnce(t *testing.T) {
	p, _ := newTestPool(time.Hour)
	defer p.Close()
	var opens atomic.Int32
	gate := make(chan struct{})
	open := func(context.Context) (*fakeConn, error) {
		opens.Add(1)
		<-gate
		return &fakeConn{key: "a"}, nil
	}
	var wg sync.WaitGroup
	conns := make([]*fakeConn, 50)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, release, err := p.Acquire(context.Background(), "a", open)
			if err != nil {
				t.Error(err)
				return
			}
			conns[i] = c
			release(false)
		}()
	}
	time.AfterFunc(50*time.Millisecond, func() { close(gate) })
	wg.Wait()
	if n := opens.Load(); n != 1 {
		t.Errorf("50 concurrent users opened %d connections, want 1", n)
	}
	for _, c := range conns {
		if c != conns[0] {
			t.Fatal("users got different connections for one key")
		}
	}
	if p.Len() != 1 {
		t.Errorf("Len = %d, want 1", p.Len())
	}
}

func TestPool_BrokenConnectionIsReplacedAndClosedOnceUnused(t *testing.T) {
	p, closes := newTestPool(time.Hour)
	defer p.Close()
	n := 0
	open := func(context.Context) (*fakeConn, error) { n++; return &fakeConn{}, nil }
	c1, rel1, _ := p.Acquire(context.Background(), "k", open)
	c1b, rel1b, _ := p.Acquire(context.Background(), "k", open)
	rel1(true) // broken, but still used by the second user
	if c1.closed.Load() {
		t.Fatal("a broken connection was closed while in use")
	}
	c2, rel2, _ := p.Acquire(context.Background(), "k", open)
	if c2 == c1 || n != 2 {
		t.Fatalf("after a break, Acquire returned the old connection (opens %d)", n)
	}
	rel1b(false)
	if !c1.closed.Load() || c1b != c1 || closes.Load() != 1 {
		t.Fatal("the broken connection was not closed once its last user released it")
	}
	rel2(false)
}

func TestPool_ClosesIdleConnections(t *testing.T) {
	p, closes := newTestPool(50 * time.Millisecond)
	defer p.Close()
	c, rel, err := p.Acquire(context.Background(), "k", func(context.Context) (*fakeConn, error) { return &fakeConn{}, nil })
	if err != nil {
		t.Fatal(err)
	}
	rel(false)
	deadline := time.Now().Add(5 * time.Second)
	for !c.closed.Load() {
		if time.Now().After(deadline) {
			t.Fatal("an idle connection was not closed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if p.Len() != 0 || closes.Load() != 1 {
		t.Errorf("Len = %d, closes = %d after the idle close", p.Len(), closes.Load())
	}
}

func TestPool_FailedOpenIsNotRemembered(t *testing.T) {
	p, _ := newTestPool(time.Hour)
	defer p.Close()
	boom := errors.New("refused")
	if _, _, err := p.Acquire(context.Background(), "k", func(context.Context) (*fakeConn, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	c, rel, err := p.Acquire(context.Background(), "k", func(context.Context) (*fakeConn, error) { return &fakeConn{}, nil })
	if err != nil || c == nil {
		t.Fatalf("second Acquire = %v, %v", c, err)
	}
	rel(false)
}

func TestPool_CloseClosesEverythingAndRefusesMore(t *testing.T) {
	p, closes := newTestPool(time.Hour)
	open := func(context.Context) (*fakeConn, error) { return &fakeConn{}, nil }
	_, rel, _ := p.Acquire(context.Background(), "a", open)
	rel(false)
	inUse, relInUse, _ := p.Acquire(context.Background(), "b", open)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if closes.Load() != 1 || inUse.closed.Load() {
		t.Fatalf("Close closed %d connections (in use closed: %v), want the idle one only", closes.Load(), inUse.closed.Load())
	}
	relInUse(false)
	if !inUse.closed.Load() {
		t.Fatal("a connection in use at Close was not closed once released")
	}
	if _, _, err := p.Acquire(context.Background(), "a", open); !errors.Is(err, ErrPoolClosed) {
		t.Fatalf("Acquire after Close: %v, want ErrPoolClosed", err)
	}
}

func TestPool_DropReplacesAConnectionSeenClosedAndClosesItOnceUnused(t *testing.T) {
	p, closes := newTestPool(time.Hour)
	defer p.Close()
	open := func(context.Context) (*fakeConn, error) { return &fakeConn{}, nil }
	c1, rel1, _ := p.Acquire(context.Background(), "k", open)
	p.Drop("k", func(c *fakeConn) bool { return c != c1 }) // another connection: kept
	if p.Len() != 1 {
		t.Fatal("Drop removed a connection it was not meant for")
	}
	p.Drop("k", func(c *fakeConn) bool { return c == c1 })
	if p.Len() != 0 {
		t.Fatal("a dropped connection is still in the pool")
	}
	if c1.closed.Load() {
		t.Fatal("a dropped connection was closed while in use")
	}
	c2, rel2, _ := p.Acquire(context.Background(), "k", open)
	if c2 == c1 {
		t.Fatal("Acquire returned the dropped connection")
	}
	p.Drop("k", func(c *fakeConn) bool { return c == c1 }) // already gone: nothing happens
	rel1(false)
	if !c1.closed.Load() || closes.Load() != 1 {
		t.Fatalf("the dropped connection was not closed once released (closes: %d)", closes.Load())
	}
	rel2(false)
	p.Drop("k", func(c *fakeConn) bool { return c == c2 }) // unused: closed at once
	if !c2.closed.Load() || closes.Load() != 2 {
		t.Fatalf("an unused dropped connection was not closed (closes: %d)", closes.Load())
	}
}
