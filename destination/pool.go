package destination

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Pool shares connections among the endpoints of one type: one connection
// per key (a broker and the credentials used on it), opened on first use
// and closed once unused for the idle timeout, so that a thousand
// endpoints on one broker share one connection and an endpoint nobody
// sends to holds none. Keys stay in memory: they may contain credentials.
type Pool[C any] struct {
	idle  time.Duration
	close func(C) error
	now   func() time.Time

	mu      sync.Mutex
	m       map[string]*poolEntry[C]
	closed  bool
	stop    chan struct{}
	stopped chan struct{}
}

type poolEntry[C any] struct {
	conn  C
	ready chan struct{} // closed once opened (or failed)
	err   error
	users int
	last  time.Time
	// gone: removed from the map (broken or idle); closed once unused.
	gone bool
}

// NewPool returns a pool that closes connections with closeFn once they
// have been unused for idle.
func NewPool[C any](idle time.Duration, closeFn func(C) error) *Pool[C] {
	return &Pool[C]{idle: idle, close: closeFn, now: time.Now, m: make(map[string]*poolEntry[C])}
}

// ErrPoolClosed is returned by Acquire once the pool is closed.
var ErrPoolClosed = errors.New("destination: connection pool closed")

// Acquire returns the connection of key, opening it with open if there is
// none (concurrent callers wait for one open). Call release once done with
// it, with broken set if the connection failed: it is then dropped, and
// closed once its last user releases it, and the next Acquire opens a new
// one. A failed open is not remembered.
func (p *Pool[C]) Acquire(ctx context.Context, key string, open func(context.Context) (C, error)) (conn C, release func(broken bool), err error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return conn, nil, ErrPoolClosed
		}
		p.startJanitor()
		e := p.m[key]
		if e == nil {
			e = &poolEntry[C]{ready: make(chan struct{}), users: 1}
			p.m[key] = e
			p.mu.Unlock()
			c, err := open(ctx)
			p.mu.Lock()
			e.conn, e.err, e.last = c, err, p.now()
			if err != nil {
				e.users, e.gone = 0, true
				if p.m[key] == e {
					delete(p.m, key)
				}
			}
			close(e.ready)
			closeNow := err == nil && p.closed
			p.mu.Unlock()
			if err != nil {
				return conn, nil, err
			}
			if closeNow {
				_ = p.close(c)
				return conn, nil, ErrPoolClosed
			}
			return c, p.releaser(key, e), nil
		}
		e.users++
		p.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			p.mu.Lock()
			e.users--
			p.mu.Unlock()
			return conn, nil, ctx.Err()
		}
		if e.err != nil {
			p.mu.Lock()
			e.users--
			p.mu.Unlock()
			continue // the open failed: try once more ourselves
		}
		return e.conn, p.releaser(key, e), nil
	}
}

func (p *Pool[C]) releaser(key string, e *poolEntry[C]) func(bool) {
	var once sync.Once
	return func(broken bool) {
		once.Do(func() {
			p.mu.Lock()
			e.users--
			e.last = p.now()
			if broken && !e.gone {
				e.gone = true
				if p.m[key] == e {
					delete(p.m, key)
				}
			}
			closeIt := e.gone && e.users == 0
			p.mu.Unlock()
			if closeIt {
				_ = p.close(e.conn)
			}
		})
	}
}

// Drop removes key's connection from the pool if is reports that it is
// the one meant (a connection that its client saw close: a broker that
// went away), so that the next Acquire opens a new one at once instead
// of failing on the dead one. The connection is closed once its last
// user releases it. A connection still opening is left alone.
func (p *Pool[C]) Drop(key string, is func(C) bool) {
	p.mu.Lock()
	e := p.m[key]
	if e == nil || e.gone {
		p.mu.Unlock()
		return
	}
	select {
	case <-e.ready:
	default:
		p.mu.Unlock()
		return
	}
	if e.err != nil || !is(e.conn) {
		p.mu.Unlock()
		return
	}
	e.gone = true
	delete(p.m, key)
	closeIt := e.users == 0
	p.mu.Unlock()
	if closeIt {
		_ = p.close(e.conn)
	}
}

// startJanitor starts the goroutine that closes idle connections. The
// caller holds p.mu.
func (p *Pool[C]) startJanitor() {
	if p.stop != nil {
		return
	}
	p.stop, p.stopped = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.stopped)
		t := time.NewTicker(max(p.idle/4, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.closeIdle()
			}
		}
	}()
}

// closeIdle closes the connections unused for the idle timeout.
func (p *Pool[C]) closeIdle() {
	p.mu.Lock()
	now := p.now()
	var idle []C
	for key, e := range p.m {
		select {
		case <-e.ready:
		default:
			continue // opening
		}
		if e.users == 0 && now.Sub(e.last) >= p.idle {
			e.gone = true
			delete(p.m, key)
			idle = append(idle, e.conn)
		}
	}
	p.mu.Unlock()
	for _, c := range idle {
		_ = p.close(c)
	}
}

// Len returns how many connections are open or opening.
func (p *Pool[C]) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}

// Close closes every connection (those in use once released) and stops
// the pool: Acquire fails from then on.
func (p *Pool[C]) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	var now []C
	for key, e := range p.m {
		select {
		case <-e.ready:
		default:
			continue // the opener closes it (closeNow)
		}
		e.gone = true
		delete(p.m, key)
		if e.users == 0 {
			now = append(now, e.conn)
		}
	}
	stop := p.stop
	p.mu.Unlock()
	if stop != nil {
		close(stop)
		<-p.stopped
	}
	var errs []error
	for _, c := range now {
		if err := p.close(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// OpenContext runs open, which cannot be cancelled itself (a broker
// client's connect), until ctx ends: it then returns ctx's error at once
// and closes, with closeFn, whatever open returns later.
func OpenContext[C any](ctx context.Context, open func() (C, error), closeFn func(C)) (C, error) {
	type opened struct {
		c   C
		err error
	}
	done := make(chan opened, 1)
	go func() {
		c, err := open()
		done <- opened{c, err}
	}()
	select {
	case o := <-done:
		return o.c, o.err
	case <-ctx.Done():
		go func() {
			if o := <-done; o.err == nil {
				closeFn(o.c)
			}
		}()
		var zero C
		return zero, ctx.Err()
	}
}
