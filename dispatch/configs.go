package dispatch

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/endpoint"
	"github.com/heraldhq/herald/ent/schema"
	"github.com/heraldhq/herald/tenant"
)

// endpointConfigs caches the sending configuration of endpoints and knows
// which are inactive. It is the one owner of that knowledge: the scheduler
// asks it before claiming or accepting deliveries, workers before sending.
//
// Every change notice (changed, disabled, enabled) bumps the endpoint's
// generation, and a load applies what it read only if no notice arrived
// while it read. So a disable racing a reload cannot be undone by the
// reload's older view (sending to a just-deleted endpoint), nor an enable
// by a reload that read the endpoint still disabled.
type endpointConfigs struct {
	// ttl bounds how long a loaded configuration is trusted: changes made
	// by another process are picked up within it.
	ttl  time.Duration
	now  func() time.Time
	load func(ctx context.Context, ids []string) ([]*ent.Endpoint, error)
	// prepare parses a loaded endpoint for sending.
	prepare func(*ent.Endpoint) (*endpointConfig, error)

	mu sync.Mutex
	m  map[string]*configEntry
	// epoch is bumped by reset: loads that began before it are not
	// applied.
	epoch uint64
	// ahead queues endpoints whose configuration is in use and past half
	// its ttl, for refreshAhead to read again before it expires.
	ahead chan string
}

type configEntry struct {
	cfg       *endpointConfig // nil until loaded
	gen       uint64          // bumped by every notice
	loadedGen uint64          // gen when cfg was read
	loadedAt  time.Time
	inactive  bool // disabled or deleted, as far as we know
	// parkedUntil: the endpoint's configuration could not be read (for
	// example an unreadable secret); its deliveries wait until then.
	parkedUntil time.Time
	parkErr     error
	// touched is when the entry was last noticed, loaded or asked for.
	touched time.Time
	// refreshing: queued for refreshAhead or being read by it.
	refreshing bool
}

// parkFor is how long an endpoint whose configuration cannot be read is
// left alone before the engine tries again.
const parkFor = time.Minute

func newEndpointConfigs(ttl time.Duration, now func() time.Time, load func(ctx context.Context, ids []string) ([]*ent.Endpoint, error),
	prepare func(*ent.Endpoint) (*endpointConfig, error)) *endpointConfigs {
	return &endpointConfigs{ttl: ttl, now: now, load: load, prepare: prepare, m: make(map[string]*configEntry),
		ahead: make(chan string, maxRefreshAhead)}
}

// loadEndpoints reads endpoints, deleted ones included, through ent.
func loadEndpoints(client *ent.Client) func(ctx context.Context, ids []string) ([]*ent.Endpoint, error) {
	return func(ctx context.Context, ids []string) ([]*ent.Endpoint, error) {
		ctx = schema.IncludeDeleted(tenant.System(ctx))
		eps, err := client.Endpoint.Query().Where(endpoint.IDIn(ids...)).All(ctx)
		if err != nil {
			return nil, fmt.Errorf("load endpoints: %w", err)
		}
		return eps, nil
	}
}

// entry returns an endpoint's entry, creating it, and marks it used. The
// caller holds c.mu.
func (c *endpointConfigs) entry(id string) *configEntry {
	e := c.m[id]
	if e == nil {
		e = &configEntry{}
		c.m[id] = e
	}
	e.touched = c.now()
	return e
}

// changed notes that an endpoint's configuration changed.
func (c *endpointConfigs) changed(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entry(id)
	e.gen++
	e.parkedUntil = time.Time{}
}

// disabled notes that an endpoint was disabled or deleted.
func (c *endpointConfigs) disabled(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entry(id)
	e.gen++
	e.inactive = true
}

// enabled notes that an endpoint is active again.
func (c *endpointConfigs) enabled(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entry(id)
	e.gen++
	e.inactive = false
	e.parkedUntil = time.Time{}
}

// inactive reports whether an endpoint is known to be disabled or deleted.
func (c *endpointConfigs) isInactive(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[id]
	return e != nil && e.inactive
}

// parked reports whether an endpoint's deliveries must wait because its
// configuration could not be read.
func (c *endpointConfigs) parked(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[id]
	return e != nil && c.now().Before(e.parkedUntil)
}

// appOf returns the app of an endpoint whose configuration was loaded
// once ("" if never): an endpoint never changes apps.
func (c *endpointConfigs) appOf(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[id]; e != nil && e.cfg != nil {
		return e.cfg.AppID
	}
	return ""
}

// fresh returns an endpoint's configuration if it is loaded, current and
// active. Past half its ttl, the configuration is queued to be read again
// in the background (see refreshAhead), so that an endpoint publishes
// keep sending to never finds it expired: its deliveries would go the slow
// way, through the store and a claim, until a claim read it again.
func (c *endpointConfigs) fresh(id string) *endpointConfig {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[id]
	if e == nil || e.cfg == nil || e.inactive || e.loadedGen != e.gen {
		return nil
	}
	age := c.now().Sub(e.loadedAt)
	if age > c.ttl {
		return nil
	}
	if age > c.ttl/2 && !e.refreshing {
		select {
		case c.ahead <- id:
			e.refreshing = true
		default: // full: a later call queues it
		}
	}
	return e.cfg
}

// maxRefreshAhead bounds the endpoints waiting to be read again ahead of
// expiry, and how many one read takes.
const maxRefreshAhead = 256

// refreshAhead reads again the configurations fresh queued, until ctx
// ends (which also ends a read under way). A read that fails changes
// nothing: the entries expire, and the claim that next needs them reads
// them (or parks the endpoint).
func (c *endpointConfigs) refreshAhead(ctx context.Context) {
	for {
		var ids []string
		select {
		case <-ctx.Done():
			return
		case id := <-c.ahead:
			ids = append(ids, id)
		}
	more:
		for len(ids) < maxRefreshAhead {
			select {
			case id := <-c.ahead:
				ids = append(ids, id)
			default:
				break more
			}
		}
		readCtx, cancel := context.WithTimeout(ctx, refreshTimeout)
		_, _, _ = c.lookup(readCtx, ids, true)
		cancel()
		c.mu.Lock()
		for _, id := range ids {
			if e := c.m[id]; e != nil {
				e.refreshing = false
			}
		}
		c.mu.Unlock()
	}
}

// refreshTimeout bounds one read of refreshAhead.
const refreshTimeout = 10 * time.Second

// get returns the configurations of endpoints, loading those that are
// missing, changed or old. Endpoints whose configuration cannot be read
// are parked (see parked) and reported in parkErrs instead; unknown
// endpoints are missing from both.
func (c *endpointConfigs) get(ctx context.Context, ids []string) (cfgs map[string]*endpointConfig, parkErrs map[string]error, err error) {
	return c.lookup(ctx, ids, false)
}

// lookup is get, reading every endpoint again if force is set.
func (c *endpointConfigs) lookup(ctx context.Context, ids []string, force bool) (cfgs map[string]*endpointConfig, parkErrs map[string]error, err error) {
	cfgs = make(map[string]*endpointConfig, len(ids))
	for try := 0; ; try++ {
		var reload []string
		gens := make(map[string]uint64)
		now := c.now()
		c.mu.Lock()
		epoch := c.epoch
		for _, id := range ids {
			if _, ok := cfgs[id]; ok {
				continue
			}
			if _, ok := parkErrs[id]; ok {
				continue
			}
			e := c.entry(id)
			switch {
			case now.Before(e.parkedUntil):
				if parkErrs == nil {
					parkErrs = make(map[string]error)
				}
				parkErrs[id] = e.parkErr
			case !force && e.cfg != nil && e.loadedGen == e.gen && now.Sub(e.loadedAt) <= c.ttl:
				cfgs[id] = e.cfg
			default:
				if _, ok := gens[id]; !ok {
					gens[id] = e.gen
					reload = append(reload, id)
				}
			}
		}
		c.mu.Unlock()
		if len(reload) == 0 {
			return cfgs, parkErrs, nil
		}
		eps, err := c.load(ctx, reload)
		if err != nil {
			return nil, nil, err
		}
		raced := false
		c.mu.Lock()
		for _, ep := range eps {
			cfg, perr := c.prepare(ep)
			e := c.entry(ep.ID)
			if e.gen != gens[ep.ID] || c.epoch != epoch {
				raced = true // a notice arrived while reading: read again
				continue
			}
			if perr != nil {
				e.parkedUntil, e.parkErr = now.Add(parkFor), perr
				if parkErrs == nil {
					parkErrs = make(map[string]error)
				}
				parkErrs[ep.ID] = perr
				continue
			}
			e.cfg, e.loadedGen, e.loadedAt = cfg, e.gen, now
			e.inactive = !cfg.Active || cfg.Deleted
			cfgs[ep.ID] = cfg
		}
		c.mu.Unlock()
		if !raced || try == 3 {
			return cfgs, parkErrs, nil
		}
	}
}

// reset forgets every loaded configuration (notices may have been
// missed); inactive marks stay until the next load reads the endpoint.
func (c *endpointConfigs) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	for _, e := range c.m {
		e.gen++
		e.cfg = nil
	}
}

// forget drops entries unused for longer than olderThan, so that the cache
// does not grow with the number of endpoints ever seen. olderThan must
// exceed the lease: a queued delivery is sent or released within it, so no
// worker still needs a forgotten entry's inactive mark, and the next load
// reads the endpoint's state from the database.
func (c *endpointConfigs) forget(olderThan time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for id, e := range c.m {
		if now.Sub(e.touched) > olderThan && now.After(e.parkedUntil) {
			delete(c.m, id)
		}
	}
}
