package pgnotify

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Execer runs a statement: *sql.DB, *sql.Conn and *sql.Tx implement it.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// notifyQuery sends many notifications in one statement, in order. All of
// them are delivered when its transaction commits.
const notifyQuery = `SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS n(c, p)`

// maxPerStatement bounds one statement to about 1 MiB of payloads.
const maxPerStatement = 128

// NewReplicaID returns a random replica ID for a process: give the same
// one to its Sender and Listener so that it ignores its own messages.
func NewReplicaID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// SenderConfig configures a Sender.
type SenderConfig struct {
	// DB runs the NOTIFY statements: the pool (*sql.DB over pgx).
	DB Execer
	// ReplicaID identifies this process in every notification (default
	// NewReplicaID()): printable ASCII without spaces, at most 64 bytes.
	ReplicaID string
	// MaxQueue is how many messages may wait for the next flush (default
	// 100,000). Past it Send drops messages with ErrQueueFull.
	MaxQueue int
	// Timeout bounds one flush (default 5s).
	Timeout time.Duration
	// Logger receives the sender's logs (default slog.Default()).
	Logger *slog.Logger
}

// SenderStats counts what a Sender did.
type SenderStats struct {
	// Messages were handed to PostgreSQL in Notifications notifications
	// by Flushes statements.
	Messages, Notifications, Flushes int64
	// Dropped messages: the queue was full, or PostgreSQL refused their
	// flush several times.
	Dropped int64
}

// Sender batches messages into notifications. Send queues a message and
// returns at once; one goroutine sends everything queued while its
// previous statement ran in one statement (group commit: no timer, so a
// lone message leaves at once and a burst shares notifications), packing
// each channel's messages into payloads under PostgreSQL's 8,000-byte
// limit.
//
// Create it with NewSender, start it with Start and stop it with Close.
type Sender struct {
	cfg    SenderConfig
	log    *slog.Logger
	packer packer // owned by the flushing goroutine

	mu     sync.Mutex
	queue  []Message
	skip   map[string]bool // channels that dropped messages since the last flush
	closed bool
	wake   chan struct{}

	ctx     context.Context // cancelled by Close after the last flush
	cancel  context.CancelFunc
	closing chan struct{}
	done    chan struct{}
	start   sync.Once
	close   sync.Once

	messages, notifications, flushes, dropped atomic.Int64
}

// NewSender returns a Sender.
func NewSender(cfg SenderConfig) (*Sender, error) {
	if cfg.DB == nil {
		return nil, errors.New("pgnotify: SenderConfig.DB is required")
	}
	if cfg.ReplicaID == "" {
		cfg.ReplicaID = NewReplicaID()
	}
	if !validReplicaID(cfg.ReplicaID) {
		return nil, fmt.Errorf("pgnotify: replica ID %q: use at most %d printable ASCII characters without spaces", cfg.ReplicaID, maxReplicaID)
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = 100_000
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Sender{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "pgnotify"),
		packer:  packer{replica: cfg.ReplicaID, seq: make(map[string]uint64)},
		skip:    make(map[string]bool),
		wake:    make(chan struct{}, 1),
		ctx:     ctx,
		cancel:  cancel,
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}, nil
}

// ReplicaID returns the ID this sender signs its notifications with.
func (s *Sender) ReplicaID() string { return s.cfg.ReplicaID }

// Stats returns what the sender has done so far.
func (s *Sender) Stats() SenderStats {
	return SenderStats{
		Messages: s.messages.Load(), Notifications: s.notifications.Load(),
		Flushes: s.flushes.Load(), Dropped: s.dropped.Load(),
	}
}

// Send queues a message for the other replicas. It never blocks. The
// message is checked here so that it cannot spoil the batch it joins.
func (s *Sender) Send(channel, payload string) error {
	m := Message{Channel: channel, Payload: payload}
	if err := m.check(); err != nil {
		return err
	}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return ErrClosed
	case len(s.queue) >= s.cfg.MaxQueue:
		s.skip[channel] = true
		s.mu.Unlock()
		s.dropped.Add(1)
		return ErrQueueFull
	}
	s.queue = append(s.queue, m)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// SendTx sends messages in the caller's transaction ex: they are
// delivered when it commits, and never if it rolls back. Use it to wake
// other replicas about rows the transaction writes. The messages are
// packed as Send packs them but not counted, so listeners cannot tell one
// that was rolled back from one that was lost.
func (s *Sender) SendTx(ctx context.Context, ex Execer, msgs ...Message) error {
	for i := range msgs {
		if err := msgs[i].check(); err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
	}
	p := packer{replica: s.cfg.ReplicaID}
	channels, payloads := p.pack(msgs, nil, false)
	for len(channels) > 0 {
		n := min(len(channels), maxPerStatement)
		if _, err := ex.ExecContext(ctx, notifyQuery, channels[:n], payloads[:n]); err != nil {
			return fmt.Errorf("notify: %w", err)
		}
		channels, payloads = channels[n:], payloads[n:]
	}
	return nil
}

// Start starts sending.
func (s *Sender) Start() {
	s.start.Do(func() { go s.run() })
}

// Close stops accepting messages, sends those already queued (for as long
// as ctx allows) and stops.
func (s *Sender) Close(ctx context.Context) error {
	s.close.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.closing)
		s.start.Do(func() { close(s.done) }) // never started: nothing is sent
	})
	select {
	case <-s.done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel() // abandons the flush in progress
		<-s.done
		return fmt.Errorf("pgnotify: close: %w", ctx.Err())
	}
}

// run is the flushing goroutine.
func (s *Sender) run() {
	defer close(s.done)
	backoff := time.Duration(0)
	for {
		select {
		case <-s.wake:
		case <-s.closing:
			s.flushAll()
			return
		}
		if !s.flushAll() {
			// PostgreSQL is unreachable: let messages gather instead of
			// failing one statement per message.
			backoff = min(max(2*backoff, 50*time.Millisecond), 5*time.Second)
			select {
			case <-time.After(backoff):
			case <-s.closing:
			}
			select {
			case s.wake <- struct{}{}:
			default:
			}
			continue
		}
		backoff = 0
	}
}

// flushAll sends everything queued and reports whether every flush
// succeeded.
func (s *Sender) flushAll() bool {
	for {
		s.mu.Lock()
		msgs := s.queue
		s.queue = nil
		skip := s.skip
		if len(skip) > 0 {
			s.skip = make(map[string]bool)
		}
		s.mu.Unlock()
		if len(msgs) == 0 {
			if len(skip) > 0 {
				s.mu.Lock()
				for c := range skip {
					s.skip[c] = true
				}
				s.mu.Unlock()
			}
			return true
		}
		channels, payloads := s.packer.pack(msgs, skip, true)
		// Channels that dropped messages but sent nothing now keep the
		// skip for their next notification.
		if len(skip) > 0 {
			s.mu.Lock()
			for c := range skip {
				s.skip[c] = true
			}
			s.mu.Unlock()
		}
		if !s.flush(channels, payloads, len(msgs)) {
			return false
		}
	}
}

// flush sends the payloads, retrying a failed statement twice (a pooled
// connection may have died with a server restart). Payloads it cannot send
// are dropped; their numbers are used, so listeners see the gap.
func (s *Sender) flush(channels, payloads []string, messages int) bool {
	for len(channels) > 0 {
		n := min(len(channels), maxPerStatement)
		var err error
		for try := range 3 {
			if try > 0 && s.ctx.Err() != nil {
				break
			}
			ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
			_, err = s.cfg.DB.ExecContext(ctx, notifyQuery, channels[:n], payloads[:n])
			cancel()
			if err == nil {
				break
			}
		}
		if err != nil {
			s.dropped.Add(int64(messages))
			s.log.Warn("send notifications", "notifications", len(channels), "messages", messages, "err", err)
			return false
		}
		s.flushes.Add(1)
		s.notifications.Add(int64(n))
		channels, payloads = channels[n:], payloads[n:]
	}
	s.messages.Add(int64(messages))
	return true
}
