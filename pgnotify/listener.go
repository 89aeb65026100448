package pgnotify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Notification is one message from another replica.
type Notification struct {
	// Channel it came on.
	Channel string
	// Sender is the replica ID of the process that sent it.
	Sender string
	// Payload is the message as sent.
	Payload string
}

// Handler receives the messages of a channel. Its methods run on the
// listener's goroutine, one call at a time, and must not block.
type Handler interface {
	// HandleNotification is called for every message from another
	// replica, in the order each replica sent them.
	HandleNotification(Notification)
	// HandleReset is called when messages on the channel may have been
	// missed: the listener's connection was re-established, or a
	// replica's notifications skipped a number (it dropped messages or
	// failed to send some). Drop what was cached and look again.
	HandleReset()
}

// HandlerFuncs adapts two functions to a Handler; either may be nil.
type HandlerFuncs struct {
	Notification func(Notification)
	Reset        func()
}

// HandleNotification calls f.Notification.
func (f HandlerFuncs) HandleNotification(n Notification) {
	if f.Notification != nil {
		f.Notification(n)
	}
}

// HandleReset calls f.Reset.
func (f HandlerFuncs) HandleReset() {
	if f.Reset != nil {
		f.Reset()
	}
}

// ListenerConfig configures a Listener.
type ListenerConfig struct {
	// ConnConfig says where to connect (db.DB.ConnConfig()).
	ConnConfig *pgx.ConnConfig
	// ReplicaID is this process's replica ID: notifications it sent are
	// ignored. Give its Sender the same.
	ReplicaID string
	// MinBackoff and MaxBackoff bound the wait between reconnection
	// attempts (defaults 100ms and 5s), doubling from one to the other.
	MinBackoff, MaxBackoff time.Duration
	// PingInterval is how long the connection may stay silent before it
	// is checked with a query, so that one cut off without a word is
	// replaced (default 15s).
	PingInterval time.Duration
	// Logger receives the listener's logs (default slog.Default()).
	Logger *slog.Logger
}

// Listener holds one native connection that LISTENs on every channel
// with a handler, and passes each notification's messages to them. When
// the connection breaks it reconnects with backoff, listens again, and
// tells every handler that messages may have been missed.
//
// Create it with NewListener, add handlers with Handle (before or after
// Start), and stop it with Close.
type Listener struct {
	cfg ListenerConfig
	log *slog.Logger

	mu        sync.Mutex
	handlers  map[string][]Handler
	pending   map[string]bool // channels to LISTEN on
	listening bool            // connected, and listening on every channel not pending
	changed   chan struct{}   // closed and replaced when listening or pending change
	interrupt context.CancelFunc

	// seen is the last number of each (replica, channel), to notice gaps.
	// Owned by the listening goroutine.
	seen map[seenKey]uint64

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	start  sync.Once
}

type seenKey struct{ replica, channel string }

// maxSeen bounds the gap tracking: replicas that restarted leave entries
// behind, and past this many all are forgotten (a gap right then goes
// unnoticed).
const maxSeen = 4096

// NewListener returns a Listener.
func NewListener(cfg ListenerConfig) (*Listener, error) {
	if cfg.ConnConfig == nil {
		return nil, errors.New("pgnotify: ListenerConfig.ConnConfig is required")
	}
	if cfg.ReplicaID != "" && !validReplicaID(cfg.ReplicaID) {
		return nil, fmt.Errorf("pgnotify: replica ID %q: use at most %d printable ASCII characters without spaces", cfg.ReplicaID, maxReplicaID)
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(5*time.Second, cfg.MinBackoff)
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Listener{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "pgnotify"),
		handlers: make(map[string][]Handler),
		pending:  make(map[string]bool),
		changed:  make(chan struct{}),
		seen:     make(map[seenKey]uint64),
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
	}, nil
}

// Handle adds h to the handlers of channel (a name Send accepts) and
// LISTENs on it if the listener does not yet.
func (l *Listener) Handle(channel string, h Handler) error {
	if !validChannel(channel) {
		return fmt.Errorf("%w: channel %q", ErrInvalid, channel)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.handlers[channel]; !ok {
		l.pending[channel] = true
		l.broadcastLocked()
		if l.interrupt != nil {
			l.interrupt() // the running loop LISTENs at once
		}
	}
	l.handlers[channel] = append(l.handlers[channel], h)
	return nil
}

// Listening waits until the listener is connected and listens on every
// channel handled so far, or ctx ends. Messages sent before it returns
// may not arrive.
func (l *Listener) Listening(ctx context.Context) error {
	for {
		l.mu.Lock()
		ok, ch := l.listening && len(l.pending) == 0, l.changed
		l.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (l *Listener) broadcastLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *Listener) setListening(v bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.listening != v {
		l.listening = v
		l.broadcastLocked()
	}
}

// Start connects and listens in the background.
func (l *Listener) Start() {
	l.start.Do(func() { go l.run() })
}

// Close stops listening and closes the connection.
func (l *Listener) Close() {
	l.cancel()
	l.start.Do(func() { close(l.done) })
	<-l.done
}

func (l *Listener) run() {
	defer close(l.done)
	backoff := time.Duration(0)
	first := true
	for l.ctx.Err() == nil {
		conn, err := l.connect()
		if err != nil {
			if l.ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, l.cfg.MinBackoff), l.cfg.MaxBackoff)
			l.log.Warn("listen for notifications: connect", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-l.ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		if !first {
			l.log.Info("listening for notifications again")
			l.reset()
		}
		first = false
		err = l.listen(conn)
		l.setListening(false)
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn.Close(closeCtx)
		cancel()
		if l.ctx.Err() != nil {
			return
		}
		l.log.Warn("listen for notifications: connection lost", "err", err)
	}
}

// connect opens the connection and LISTENs on every handled channel.
func (l *Listener) connect() (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(l.ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, l.cfg.ConnConfig.Copy())
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	for c := range l.handlers {
		l.pending[c] = true
	}
	l.mu.Unlock()
	if err := l.listenPending(ctx, conn); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	l.setListening(true)
	return conn, nil
}

// listenPending LISTENs on the channels Handle added.
func (l *Listener) listenPending(ctx context.Context, conn *pgx.Conn) error {
	l.mu.Lock()
	var channels []string
	for c := range l.pending {
		channels = append(channels, c)
	}
	l.mu.Unlock()
	for _, c := range channels {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{c}.Sanitize()); err != nil {
			return fmt.Errorf("listen %s: %w", c, err)
		}
		l.mu.Lock()
		delete(l.pending, c)
		l.broadcastLocked()
		l.mu.Unlock()
	}
	return nil
}

// listen waits for notifications until the connection fails or the
// listener closes.
func (l *Listener) listen(conn *pgx.Conn) error {
	for {
		l.mu.Lock()
		ctx, cancel := context.WithTimeout(l.ctx, l.cfg.PingInterval)
		l.interrupt = cancel
		more := len(l.pending) > 0
		l.mu.Unlock()
		if more {
			cancel()
			lctx, lcancel := context.WithTimeout(l.ctx, 10*time.Second)
			err := l.listenPending(lctx, conn)
			lcancel()
			if err != nil {
				return err
			}
			continue
		}
		n, err := conn.WaitForNotification(ctx)
		timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
		interrupted := ctx.Err() != nil
		cancel()
		l.mu.Lock()
		l.interrupt = nil
		l.mu.Unlock()
		if n != nil {
			l.dispatch(n.Channel, n.Payload)
		}
		switch {
		case err == nil:
		case l.ctx.Err() != nil:
			return l.ctx.Err()
		case timedOut:
			// Silence: make sure the connection is still there.
			pctx, pcancel := context.WithTimeout(l.ctx, 5*time.Second)
			_, err := conn.Exec(pctx, "SELECT 1")
			pcancel()
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
		case interrupted:
			// Handle added a channel.
		default:
			return err
		}
	}
}

// dispatch passes the messages of one notification to the channel's
// handlers.
func (l *Listener) dispatch(channel, payload string) {
	e, err := parseEnvelope(payload)
	if err != nil {
		l.log.Warn("ignored a notification that Herald did not send", "channel", channel, "bytes", len(payload))
		return
	}
	if e.replica == l.cfg.ReplicaID {
		return
	}
	l.mu.Lock()
	hs := l.handlers[channel]
	l.mu.Unlock()
	if e.seq != 0 {
		k := seenKey{e.replica, channel}
		last, ok := l.seen[k]
		if ok && e.seq != last+1 {
			l.log.Warn("notifications were missed", "channel", channel, "replica", e.replica, "after", last, "got", e.seq)
			for _, h := range hs {
				h.HandleReset()
			}
		}
		if !ok && len(l.seen) >= maxSeen {
			clear(l.seen)
		}
		l.seen[k] = e.seq
	}
	for _, m := range e.messages {
		n := Notification{Channel: channel, Sender: e.replica, Payload: m}
		for _, h := range hs {
			h.HandleNotification(n)
		}
	}
}

// reset tells every handler that messages may have been missed while the
// connection was down.
func (l *Listener) reset() {
	clear(l.seen)
	l.mu.Lock()
	var hs []Handler
	for _, h := range l.handlers {
		hs = append(hs, h...)
	}
	l.mu.Unlock()
	for _, h := range hs {
		h.HandleReset()
	}
}
