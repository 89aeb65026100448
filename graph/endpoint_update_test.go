package graph_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// TestUpdateEndpoint_ConcurrentUpdatesOfDifferentFieldsAllSurvive changes
// eleven fields of one endpoint at once, each by its own updateEndpoint
// call, round after round: every round's values must all be stored. An
// update that merged its change over a copy read before another update
// was written would put that other field back to its previous round.
func TestUpdateEndpoint_ConcurrentUpdatesOfDifferentFieldsAllSurvive(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	c := s.As(t, s.Token)
	rc := heraldtest.NewReceiver(t, nil)
	ep, _ := createEndpoint(t, c, map[string]any{"url": rc.Hook("/start")})

	type change struct {
		field string
		input func(r int) map[string]any
		got   func(e endpoint) any
		want  func(r int) any
	}
	patterns := []string{"order.*", "contact.*"}
	retry := func(k string, v any) map[string]any { return map[string]any{"retryPolicy": map[string]any{k: v}} }
	changes := []change{
		{"name", func(r int) map[string]any { return map[string]any{"name": fmt.Sprintf("hook %d", r)} },
			func(e endpoint) any { return e.Name }, func(r int) any { return fmt.Sprintf("hook %d", r) }},
		{"description", func(r int) map[string]any { return map[string]any{"description": fmt.Sprintf("round %d", r)} },
			func(e endpoint) any { return e.Description }, func(r int) any { return fmt.Sprintf("round %d", r) }},
		{"url", func(r int) map[string]any { return map[string]any{"url": rc.Hook(fmt.Sprintf("/round%d", r))} },
			func(e endpoint) any { return e.URL }, func(r int) any { return rc.Hook(fmt.Sprintf("/round%d", r)) }},
		{"eventTypes", func(r int) map[string]any { return map[string]any{"eventTypes": []string{patterns[r%2]}} },
			func(e endpoint) any { return e.EventTypes }, func(r int) any { return []string{patterns[r%2]} }},
		{"headers", func(r int) map[string]any {
			return map[string]any{"headers": []map[string]string{{"name": "X-Round", "value": fmt.Sprint(r)}}}
		}, func(e endpoint) any { return fmt.Sprint(e.Headers) }, func(r int) any { return fmt.Sprintf("[{X-Round %d}]", r) }},
		{"auth", func(r int) map[string]any {
			return map[string]any{"auth": map[string]any{"type": "API_KEY", "headerName": fmt.Sprintf("X-Key-%d", r), "headerValue": "an-api-key-value"}}
		}, func(e endpoint) any { return deref(e.Auth.HeaderName) }, func(r int) any { return fmt.Sprintf("X-Key-%d", r) }},
		{"timeout", func(r int) map[string]any { return map[string]any{"timeout": fmt.Sprintf("%ds", r+1)} },
			func(e endpoint) any { return e.Timeout }, func(r int) any { return fmt.Sprintf("%ds", r+1) }},
		{"retryPolicy.maxAttempts", func(r int) map[string]any { return retry("maxAttempts", r+2) },
			func(e endpoint) any { return e.RetryPolicy.MaxAttempts }, func(r int) any { return r + 2 }},
		{"retryPolicy.initialDelay", func(r int) map[string]any { return retry("initialDelay", fmt.Sprintf("%ds", r+1)) },
			func(e endpoint) any { return e.RetryPolicy.InitialDelay }, func(r int) any { return fmt.Sprintf("%ds", r+1) }},
		{"retryPolicy.backoffMultiplier", func(r int) map[string]any { return retry("backoffMultiplier", r+2) },
			func(e endpoint) any { return e.RetryPolicy.BackoffMultiplier }, func(r int) any { return float64(r + 2) }},
		{"retryPolicy.maxDelay", func(r int) map[string]any { return retry("maxDelay", fmt.Sprintf("%dh", r+1)) },
			func(e endpoint) any { return e.RetryPolicy.MaxDelay }, func(r int) any { return fmt.Sprintf("%dh", r+1) }},
	}

	for r := range 5 {
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, ch := range changes {
			wg.Go(func() {
				<-start
				res := c.Do(updateEndpointOp, map[string]any{"id": ep.ID, "in": ch.input(r)})
				if len(res.Errors) > 0 {
					t.Errorf("round %d: update %s: %s", r, ch.field, res.Body)
				}
			})
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			return
		}
		got := getEndpoint(t, c, ep.ID)
		for _, ch := range changes {
			if g, w := ch.got(got), ch.want(r); fmt.Sprint(g) != fmt.Sprint(w) {
				t.Errorf("round %d: %s = %v, want %v: a concurrent update of another field undid it", r, ch.field, g, w)
			}
		}
		if t.Failed() {
			return
		}
	}
}
