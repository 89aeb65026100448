package server

import (
	"context"
	"time"

	"github.com/heraldhq/herald/tenant"
)

// recheckLive reads the keys of every open live connection from the
// database and closes the connections whose key no longer works (4401).
// Revocations made through this process close their connections at once,
// and those made through another replica arrive as notices; this is what
// closes the rest: a revocation whose notice was lost (a replica that
// crashed between its commit and the notice, a full queue, a dropped
// listening connection), or a key revoked by hand in the database. It runs
// every RecheckInterval and whenever notices may have been missed.
func (s *Server) recheckLive(ctx context.Context) {
	ids := s.websockets.keys()
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(tenant.System(ctx), 10*time.Second)
	defer cancel()
	dead, err := s.auth.Check(ctx, ids)
	if err != nil {
		s.log.Warn("recheck the keys of live connections; trying again later", "err", err)
		return
	}
	for id, why := range dead {
		if n := s.websockets.closeKey(id, CloseUnauthorized, "API key or portal session no longer works"); n > 0 {
			s.log.Info("closed live connections of a key that no longer works", "key_id", id, "connections", n, "reason", why.Error())
		}
	}
}

// pokeRecheck asks for the live connections' keys to be checked now.
func (s *Server) pokeRecheck() {
	select {
	case s.recheck <- struct{}{}:
	default:
	}
}

// runRecheck rechecks live connections every interval and on each poke,
// until stop is closed.
func (s *Server) runRecheck(interval time.Duration, poke <-chan struct{}, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		case <-poke:
		}
		s.recheckLive(context.Background())
	}
}
