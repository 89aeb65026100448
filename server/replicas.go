package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/heraldhq/herald/auth"
	"github.com/heraldhq/herald/catalog"
	"github.com/heraldhq/herald/cluster"
	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/destination/listener"
	"github.com/heraldhq/herald/dispatch"
	"github.com/heraldhq/herald/graph"
	"github.com/heraldhq/herald/pgnotify"
	"github.com/heraldhq/herald/relay"
)

// replicas connects this process to the other Herald replicas sharing its
// PostgreSQL database: one sender and one listening connection carry the
// live feeds (relay) and the notices that keep caches, engines and open
// websockets in step (cluster).
type replicas struct {
	sender   *pgnotify.Sender
	listener *pgnotify.Listener
	relay    *relay.Relay
	cluster  *cluster.Cluster
}

// newReplicas prepares the connections. The handlers of other replicas'
// notices reach the engine, authenticator and catalog through the
// returned *replicaTargets, filled in once they exist.
func newReplicas(d *db.DB, log *slog.Logger) (*replicas, *replicaTargets, error) {
	id := pgnotify.NewReplicaID()
	snd, err := pgnotify.NewSender(pgnotify.SenderConfig{DB: d.Write, ReplicaID: id, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	lis, err := pgnotify.NewListener(pgnotify.ListenerConfig{ConnConfig: d.ConnConfig(), ReplicaID: id, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	rel, err := relay.New(relay.Config{Sender: snd, Listener: lis, Codec: graph.LiveCodec{}, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	t := &replicaTargets{}
	cl, err := cluster.New(cluster.Config{Sender: snd, Listener: lis, Logger: log, Handlers: cluster.Handlers{
		Wake: func(ids []string) { t.engine.Notify(ids...) },
		Endpoint: func(c cluster.EndpointChange, appID, id string) {
			t.engine.PeerEndpoint(dispatch.EndpointNotice(c), appID, id)
		},
		KeyRevoked: func(keyID string) { t.auth.Revoked(keyID) },
		Catalog:    func(appID string) { t.catalog.Invalidate(appID) },
		Listener:   func(id, session string) { t.listeners.Evict(id, session) },
		Reset: func() {
			t.engine.PeersReset()
			t.auth.ForgetAll()
			t.catalog.InvalidateAll()
			// Revocations may have been missed: check the keys of the
			// open live connections now.
			t.recheck()
		},
	}})
	if err != nil {
		return nil, nil, err
	}
	snd.Start()
	return &replicas{sender: snd, listener: lis, relay: rel, cluster: cl}, t, nil
}

// replicaTargets are what other replicas' notices act on.
type replicaTargets struct {
	engine    *dispatch.Engine
	auth      *auth.Authenticator
	catalog   *catalog.Catalog
	listeners *listener.Hub
	recheck   func()
}

// peers adapts the cluster to the engine's view of its peers.
type peers struct{ c *cluster.Cluster }

func (p peers) Wake(ids ...string) { p.c.Wake(ids...) }

func (p peers) Endpoint(n dispatch.EndpointNotice, appID, id string) {
	p.c.Endpoint(cluster.EndpointChange(n), appID, id)
}

// start listens, and waits (briefly) until notices can be received, so
// that a replica does not miss the first ones.
func (r *replicas) start(log *slog.Logger) {
	r.listener.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.listener.Listening(ctx); err != nil {
		log.Warn("not yet listening to other replicas; notices are caught up when the connection is made", "err", err)
	}
}

// close stops listening and sends what is queued.
func (r *replicas) close(ctx context.Context) error {
	r.relay.Close()
	r.listener.Close()
	if err := r.sender.Close(ctx); err != nil {
		return fmt.Errorf("close notifications: %w", err)
	}
	return nil
}
