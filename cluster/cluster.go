// Package cluster lets Herald replicas that share a PostgreSQL database
// tell each other what changed, over notifications (package pgnotify):
// deliveries another replica may claim now, endpoints changed, disabled or
// enabled, API keys revoked, event catalogs changed, and listener sessions
// that began. Each replica
// applies what the others announce to its caches, its engine and its open
// websockets within milliseconds; the caches' short lifetimes and the
// engine's polling remain the backstop when a notification is lost, and a
// listener that reconnected resets everything (Handlers.Reset).
package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/heraldhq/herald/pgnotify"
)

// Channel is the PostgreSQL channel of the notices.
const Channel = "herald_cluster"

// EndpointChange says what happened to an endpoint.
type EndpointChange byte

// Endpoint changes.
const (
	// EndpointChanged: its configuration changed (or it was created).
	EndpointChanged EndpointChange = 'c'
	// EndpointDisabled: disabled or deleted; nothing more may be sent.
	EndpointDisabled EndpointChange = 'd'
	// EndpointEnabled: active again.
	EndpointEnabled EndpointChange = 'e'
)

// Handlers apply what other replicas announce. They run on the listener's
// goroutine, one at a time, and must not block. Nil handlers are skipped.
type Handlers struct {
	// Wake: deliveries of these endpoints may be claimed now.
	Wake func(endpointIDs []string)
	// Endpoint: an endpoint of an app changed.
	Endpoint func(change EndpointChange, appID, endpointID string)
	// KeyRevoked: an API key was revoked.
	KeyRevoked func(keyID string)
	// Catalog: an app's own event types or settings changed (an app ID),
	// or a shared catalog's types (a catalog ID).
	Catalog func(id string)
	// Listener: a session of a listener began on another replica; a
	// session of it here ends.
	Listener func(listenerID, sessionID string)
	// Reset: notices may have been missed; drop caches and look again.
	Reset func()
}

// Config configures a Cluster.
type Config struct {
	Sender   *pgnotify.Sender
	Listener *pgnotify.Listener
	Handlers Handlers
	// Logger receives the cluster's logs (default slog.Default()).
	Logger *slog.Logger
}

// Cluster sends this replica's notices and applies the others'. Create it
// with New; the Sender and Listener are started and stopped by their
// owner.
type Cluster struct {
	cfg Config
	log *slog.Logger
	// sendFunc replaces the sender in tests.
	sendFunc func(msg string)
}

// New returns a Cluster and registers its handler with the listener.
func New(cfg Config) (*Cluster, error) {
	if cfg.Sender == nil || cfg.Listener == nil {
		return nil, errors.New("cluster: Config.Sender and Listener are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Cluster{cfg: cfg, log: cfg.Logger.With("component", "cluster")}
	err := cfg.Listener.Handle(Channel, pgnotify.HandlerFuncs{Notification: c.receive, Reset: c.reset})
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return c, nil
}

// Messages are one letter and fields separated by spaces (IDs have none):
//
//	w <endpoint>...          wake
//	e <change> <app> <endpoint>
//	k <key>
//	c <app>
//	l <listener> <session>

// maxWakeIDs bounds the endpoints of one wake message, well under
// pgnotify.MaxMessage.
const maxWakeIDs = 100

// Wake tells the other replicas that deliveries of these endpoints are
// due now (published without a hand-off, or requeued).
func (c *Cluster) Wake(endpointIDs ...string) {
	for len(endpointIDs) > 0 {
		n := min(len(endpointIDs), maxWakeIDs)
		c.send("w " + strings.Join(endpointIDs[:n], " "))
		endpointIDs = endpointIDs[n:]
	}
}

// Endpoint tells the other replicas that an endpoint changed. appID may
// be empty.
func (c *Cluster) Endpoint(change EndpointChange, appID, endpointID string) {
	if appID == "" {
		appID = noApp
	}
	c.send(fmt.Sprintf("e %c %s %s", change, appID, endpointID))
}

// noApp stands for an empty app ID in a message.
const noApp = "-"

// KeyRevoked tells the other replicas that an API key was revoked.
func (c *Cluster) KeyRevoked(keyID string) { c.send("k " + keyID) }

// Catalog tells the other replicas that an app's own event types or
// settings changed, or a shared catalog's types (id is the catalog's).
func (c *Cluster) Catalog(id string) { c.send("c " + id) }

// ListenerAttached tells the other replicas that a session of a listener
// began here: theirs, if any, end.
func (c *Cluster) ListenerAttached(listenerID, sessionID string) {
	c.send("l " + listenerID + " " + sessionID)
}

func (c *Cluster) send(msg string) {
	if c.sendFunc != nil {
		c.sendFunc(msg)
		return
	}
	if err := c.cfg.Sender.Send(Channel, msg); err != nil {
		// Other replicas catch up through their caches' lifetimes and
		// polling.
		c.log.Warn("notice not sent to other replicas", "err", err)
	}
}

func (c *Cluster) receive(n pgnotify.Notification) {
	h := c.cfg.Handlers
	f := strings.Fields(n.Payload)
	if len(f) == 0 {
		return
	}
	switch {
	case f[0] == "w" && h.Wake != nil:
		h.Wake(f[1:])
	case f[0] == "e" && len(f) == 4 && len(f[1]) == 1 && h.Endpoint != nil:
		app := f[2]
		if app == noApp {
			app = ""
		}
		h.Endpoint(EndpointChange(f[1][0]), app, f[3])
	case f[0] == "k" && len(f) == 2 && h.KeyRevoked != nil:
		h.KeyRevoked(f[1])
	case f[0] == "c" && len(f) == 2 && h.Catalog != nil:
		h.Catalog(f[1])
	case f[0] == "l" && len(f) == 3 && h.Listener != nil:
		h.Listener(f[1], f[2])
	case f[0] != "w" && f[0] != "e" && f[0] != "k" && f[0] != "c" && f[0] != "l":
		c.log.Warn("unknown notice from another replica", "replica", n.Sender, "notice", f[0])
	}
}

func (c *Cluster) reset() {
	c.log.Info("notices from other replicas may have been missed; dropping caches")
	if c.cfg.Handlers.Reset != nil {
		c.cfg.Handlers.Reset()
	}
}
