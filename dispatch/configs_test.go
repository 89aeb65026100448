package dispatch

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/ent"
)

// blockingLoader returns endpoints as they were when the load began, and
// lets the test act while the load is reading.
type blockingLoader struct {
	active  bool
	reading chan struct{}
	proceed chan struct{}
	base    func(ctx context.Context, ids []string) ([]*ent.Endpoint, error)
}

func (b *blockingLoader) load(ctx context.Context, ids []string) ([]*ent.Endpoint, error) {
	eps, err := b.base(ctx, ids)
	for _, ep := range eps {
		ep.IsActive = b.active
	}
	if b.reading != nil {
		close(b.reading)
		<-b.proceed
		b.reading = nil
	}
	return eps, err
}

// A disable notice that arrives while a reload reads the endpoint (still
// active in what it read) must win: nothing more is sent to it.
func TestConfigs_DisableRacingAReloadStaysDisabled(t *testing.T) {
	clock := newFakeClock()
	l := &blockingLoader{active: true, reading: make(chan struct{}), proceed: make(chan struct{}), base: testEndpoints(t)}
	c := newEndpointConfigs(time.Hour, clock.Now, l.load, prepareNoTarget)
	done := make(chan map[string]*endpointConfig)
	go func() {
		cfgs, _, _ := c.get(context.Background(), []string{"ep_1"})
		done <- cfgs
	}()
	<-l.reading
	l.active = false // the endpoint was disabled (committed), then:
	c.disabled("ep_1")
	close(l.proceed)
	cfgs := <-done
	if !c.isInactive("ep_1") {
		t.Fatal("a reload that read the endpoint before it was disabled marked it active again")
	}
	if cfg := cfgs["ep_1"]; cfg != nil && cfg.Active {
		t.Fatal("the reload returned the endpoint's old, active configuration")
	}
	if c.fresh("ep_1") != nil {
		t.Fatal("a disabled endpoint has a fresh configuration for hand-offs")
	}
}

// The reverse: an endpoint re-enabled while a reload reads it disabled
// must not be treated as disabled (its deliveries would be failed).
func TestConfigs_EnableRacingAReloadStaysEnabled(t *testing.T) {
	clock := newFakeClock()
	l := &blockingLoader{active: false, base: testEndpoints(t)}
	c := newEndpointConfigs(time.Hour, clock.Now, l.load, prepareNoTarget)
	c.disabled("ep_1")
	l.reading, l.proceed = make(chan struct{}), make(chan struct{})
	done := make(chan map[string]*endpointConfig)
	go func() {
		cfgs, _, _ := c.get(context.Background(), []string{"ep_1"})
		done <- cfgs
	}()
	<-l.reading
	l.active = true
	c.enabled("ep_1")
	close(l.proceed)
	cfgs := <-done
	if c.isInactive("ep_1") {
		t.Fatal("a reload that read the endpoint before it was enabled marked it inactive again")
	}
	if cfg := cfgs["ep_1"]; cfg == nil || !cfg.Active {
		t.Fatalf("get returned %+v, want the endpoint's current, active configuration", cfg)
	}
}

func TestConfigs_UnreadableConfigurationParksTheEndpoint(t *testing.T) {
	clock := newFakeClock()
	base := testEndpoints(t)
	c := newEndpointConfigs(time.Hour, clock.Now, func(ctx context.Context, ids []string) ([]*ent.Endpoint, error) {
		eps, err := base(ctx, ids)
		eps[0].Secret = "not a secret"
		return eps, err
	}, prepareNoTarget)
	cfgs, parked, err := c.get(context.Background(), []string{"ep_1"})
	if err != nil || cfgs["ep_1"] != nil || parked["ep_1"] == nil || !c.parked("ep_1") {
		t.Fatalf("get = %v, %v, %v; want the endpoint parked with a reason", cfgs, parked, err)
	}
	clock.Add(parkFor + time.Second)
	if c.parked("ep_1") {
		t.Fatal("the endpoint is still parked after parkFor")
	}
}

// A configuration in use is read again before it expires, so that the
// deliveries of an endpoint publishes keep sending to are always handed
// off; one nobody asks for expires as before.
func TestConfigs_AConfigurationInUseIsReadAgainBeforeItExpires(t *testing.T) {
	clock := newFakeClock()
	base := testEndpoints(t)
	var mu sync.Mutex
	loads := 0
	load := func(ctx context.Context, ids []string) ([]*ent.Endpoint, error) {
		mu.Lock()
		loads++
		mu.Unlock()
		return base(ctx, ids)
	}
	c := newEndpointConfigs(10*time.Second, clock.Now, load, prepareNoTarget)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.refreshAhead(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	if _, _, err := c.get(context.Background(), []string{"ep_1", "ep_2"}); err != nil {
		t.Fatal(err)
	}

	clock.Add(6 * time.Second) // past half the ttl
	if c.fresh("ep_1") == nil {
		t.Fatal("a configuration within its ttl is not fresh")
	}
	waitFor(t, "the configuration to be read again", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return loads == 2
	})
	waitFor(t, "the refresh to end", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return !c.m["ep_1"].refreshing
	})

	clock.Add(6 * time.Second) // 12 s after the first read, 6 s after the second
	if c.fresh("ep_1") == nil {
		t.Fatal("a configuration in use expired: its deliveries would be claimed instead of handed off")
	}
	if c.fresh("ep_2") != nil {
		t.Fatal("a configuration nobody asked for was kept past its ttl")
	}
}
