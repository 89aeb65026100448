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
// give it to bus.New, then Attach the bus.
type Relay struct {
	cfg Config
	log *slog.Logger

	// warned limits the warnings of Send to one per kind of failure, so
	// that a flood of unencodable messages does not flood the log.
	warned sync.Map
}

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
	return &Relay{cfg: cfg, log: cfg.Logger.With("component", "relay")}, nil
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

// Attach delivers the other replicas' messages to b's subscribers.
func (r *Relay) Attach(b *bus.Bus) error {
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
