// Package relay carries live updates between Herald replicas: a bus.Relay
// that sends every message published on this replica's bus to the others
// over PostgreSQL notifications (package pgnotify), and delivers theirs to
// this replica's subscribers.
//
// The live feeds are for watching, not a durable log: a message that
// cannot be encoded or sent is dropped (and logged), and after a gap (the
// listener reconnected) subscribers simply carry on with what comes next.
package relay

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/bus"
	"github.com/heraldhq/herald/pgnotify"
)

// DefaultChannel is the PostgreSQL channel of the live feeds.
const DefaultChannel = "herald_live"

// Codec turns bus messages, whose payloads only the publisher and the
// subscribers understand, into text and back. graph.LiveCodec encodes
// Herald's live feeds.
type Codec interface {
	// Encode returns m as text of at most pgnotify.MaxMessage bytes.
	Encode(m bus.Message) (string, error)
	// Decode returns the message Encode made s from.
	Decode(s string) (bus.Message, error)
}

// Config configures a Relay.
type Config struct {
	// Sender sends this replica's messages.
	Sender *pgnotify.Sender
	// Listener receives the other replicas' messages.
	Listener *pgnotify.Listener
	// Codec encodes messages.
	Codec Codec
	// Channel is the PostgreSQL channel (default DefaultChannel).
	Channel string
	// Logger receives the relay's logs (default slog.Default()).
	Logger *slog.Logger
}

// Relay is a bus.Relay over PostgreSQL notifications. Create it with New,
// give it to bus.New, then Attach the bus; Close stops its heartbeat.
//
// Replicas send live updates only while another replica has subscribers:
// each announces on a presence channel when its first subscription opens
// and its last one closes, and repeats that it has some every
// presenceEvery, so that replicas starting later learn it; a replica not
// heard from for presenceTTL counts as having none. A replica with no
// subscribers anywhere but its own spends nothing on the relay.
type Relay struct {
	cfg Config
	log *slog.Logger

	// warned limits the warnings of Send to one per kind of failure, so
	// that a flood of unencodable messages does not flood the log.
	warned sync.Map

	// wanted caches whether any peer has subscribers (see peers).
	wanted atomic.Bool
	mu     sync.Mutex
	peers  map[string]time.Time // replica → until when it has subscribers
	local  bool                 // this replica has subscribers
	stop   chan struct{}
	done   chan struct{}
}

// Presence timing.
const (
	presenceEvery = 5 * time.Second
	presenceTTL   = 3 * presenceEvery
)

// presenceChannel carries the replicas' "I have subscribers" notices.
func (r *Relay) presenceChannel() string { return r.cfg.Channel + "_presence" }

var _ bus.Relay = (*Relay)(nil)

// New returns a Relay.
func New(cfg Config) (*Relay, error) {
	if cfg.Sender == nil || cfg.Listener == nil || cfg.Codec == nil {
		return nil, errors.New("relay: Config.Sender, Listener and Codec are required")
	}
	if cfg.Channel == "" {
		cfg.Channel = DefaultChannel
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Relay{cfg: cfg, log: cfg.Logger.With("component", "relay"), peers: make(map[string]time.Time),
		stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// Wanted implements bus.Relay: another replica has subscribers.
func (r *Relay) Wanted() bool { return r.wanted.Load() }

// Subscribers implements bus.Relay: it tells the other replicas when this
// one's first subscription opens and its last one closes.
func (r *Relay) Subscribers(any bool) {
	r.mu.Lock()
	r.local = any
	r.mu.Unlock()
	r.announce(any)
}

func (r *Relay) announce(any bool) {
	msg := "0"
	if any {
		msg = "1"
	}
	if err := r.cfg.Sender.Send(r.presenceChannel(), msg); err != nil {
		r.warnOnce(err)
	}
}

// peer records what a replica announced.
func (r *Relay) peer(replica string, any bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if any {
		r.peers[replica] = time.Now().Add(presenceTTL)
	} else {
		delete(r.peers, replica)
	}
	r.wanted.Store(len(r.peers) > 0)
}

// heartbeat repeats this replica's presence and forgets peers not heard
// from, until Close.
func (r *Relay) heartbeat() {
	defer close(r.done)
	t := time.NewTicker(presenceEvery)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		now := time.Now()
		r.mu.Lock()
		for p, until := range r.peers {
			if now.After(until) {
				delete(r.peers, p)
			}
		}
		r.wanted.Store(len(r.peers) > 0)
		local := r.local
		r.mu.Unlock()
		if local {
			r.announce(true)
		}
	}
}

// Close stops the heartbeat and tells the other replicas this one has no
// subscribers any more.
func (r *Relay) Close() {
	select {
	case <-r.stop:
		return
	default:
	}
	close(r.stop)
	<-r.done
	r.announce(false)
}

// Send hands a locally published message to the other replicas. It never
// blocks: the sender batches.
func (r *Relay) Send(m bus.Message) {
	s, err := r.cfg.Codec.Encode(m)
	if err == nil {
		err = r.cfg.Sender.Send(r.cfg.Channel, s)
	}
	if err != nil {
		r.warnOnce(err)
	}
}

func (r *Relay) warnOnce(err error) {
	key := err.Error()
	if errors.Is(err, pgnotify.ErrQueueFull) {
		key = "queue full"
	}
	if _, seen := r.warned.LoadOrStore(key, true); !seen {
		r.log.Warn("live update not relayed to other replicas (logged once)", "err", err)
	}
}

// Attach delivers the other replicas' messages to b's subscribers and
// starts following their presence.
func (r *Relay) Attach(b *bus.Bus) error {
	err := r.cfg.Listener.Handle(r.presenceChannel(), pgnotify.HandlerFuncs{
		Notification: func(n pgnotify.Notification) { r.peer(n.Sender, n.Payload == "1") },
		Reset: func() {
			// Announcements may have been missed: repeat ours, so peers
			// that forgot us learn again (theirs arrive with their
			// heartbeat).
			r.mu.Lock()
			local := r.local
			r.mu.Unlock()
			if local {
				r.announce(true)
			}
		},
	})
	if err != nil {
		return err
	}
	go r.heartbeat()
	return r.cfg.Listener.Handle(r.cfg.Channel, pgnotify.HandlerFuncs{
		Notification: func(n pgnotify.Notification) {
			m, err := r.cfg.Codec.Decode(n.Payload)
			if err != nil {
				r.log.Warn("drop a live update from another replica", "replica", n.Sender, "err", err)
				return
			}
			b.Deliver(m)
		},
		Reset: func() {
			r.log.Info("live updates from other replicas may have been missed")
		},
	})
}
