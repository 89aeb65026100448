package e2e_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/heraldhq/herald/internal/brokers"
	"github.com/heraldhq/herald/internal/heraldtest"
)

// TestBrokerEndpoint_ReplayScheduleLiveFeedStatisticsAndMetrics proves the
// engine's features on a broker endpoint (NATS JetStream), through the
// API: a delivery that failed (no stream captured its subject) is
// replayed once the stream exists; an event scheduled for later is
// published no earlier than asked; the live feed shows each change; the
// endpoint's statistics and the metrics by destination type count the
// attempts.
func TestBrokerEndpoint_ReplayScheduleLiveFeedStatisticsAndMetrics(t *testing.T) {
	b := brokers.StartNATS(t, brokers.NATSOptions{})
	s := heraldtest.Start(t)
	since := time.Now().Add(-time.Minute)
	epID, secret := s.CreateEndpoint(s.Token, map[string]any{
		"type": "NATS", "nats": map[string]any{"url": b.URL, "subject": "webhooks.{eventType}"},
		"retryPolicy": map[string]any{"maxAttempts": 1},
	})

	ws, _, err := s.DialWS(heraldtest.TransportWS, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ws.Close)
	if err := ws.Init(map[string]any{"Authorization": "Bearer " + s.Token}); err != nil {
		t.Fatal(err)
	}
	if err := ws.Subscribe("live", `subscription($e: ID) { deliveryUpdated(endpointId: $e) { eventId status } }`, map[string]any{"e": epID}); err != nil {
		t.Fatal(err)
	}

	// No stream captures the subject yet: the only attempt fails.
	first := s.Publish(s.Token, "order.created", map[string]any{"n": 1})
	d := s.WaitDelivery(s.Token, first, 60*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" })
	if d.LastError == nil || !strings.Contains(*d.LastError, "no JetStream stream") {
		t.Fatalf("want the attempt to say no stream captures the subject:\n%v", d)
	}

	// Once the stream exists, a replay delivers it.
	natsStream(t, b.URL)
	var replay struct{ ReplayDeliveries struct{ Count int } }
	s.Do(s.Token, `mutation($e: ID!, $since: Time!) { replayDeliveries(endpointId: $e, since: $since) { count } }`,
		map[string]any{"e": epID, "since": since.UTC().Format(time.RFC3339Nano)}).Decode(t, &replay)
	if replay.ReplayDeliveries.Count != 1 {
		t.Fatalf("replayDeliveries queued %d deliveries, want the failed one", replay.ReplayDeliveries.Count)
	}
	s.WaitDelivery(s.Token, first, 60*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })

	// A scheduled event is published no earlier than its deliverAt.
	at := time.Now().Add(2 * time.Second).UTC().Truncate(time.Millisecond)
	var pub struct{ PublishEvent struct{ ID string } }
	s.Do(s.Token, `mutation($in: PublishEventInput!) { publishEvent(input: $in) { id } }`, map[string]any{"in": map[string]any{
		"eventType": "order.created", "payload": map[string]any{"n": 2}, "deliverAt": at.Format(time.RFC3339Nano),
	}}).Decode(t, &pub)
	scheduled := pub.PublishEvent.ID
	d = s.WaitDelivery(s.Token, scheduled, 60*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
	if started := d.Attempts.Edges[0].Node.StartedAt; started.Before(at) {
		t.Errorf("the scheduled event was published at %s, before its deliverAt %s", started, at)
	}

	// The stream holds both, signed.
	seen := map[string]int{}
	for _, m := range natsMessages(t, b.URL) {
		seen[verify(t, secret, m)]++
	}
	if seen[first] != 1 || seen[scheduled] != 1 {
		t.Errorf("the stream holds the replayed event %d times and the scheduled one %d times, want once each", seen[first], seen[scheduled])
	}

	// The live feed showed the failure and both successes.
	want := map[string]bool{first + " FAILED": true, first + " SUCCEEDED": true, scheduled + " SUCCEEDED": true}
	for deadline := time.Now().Add(30 * time.Second); len(want) > 0 && time.Now().Before(deadline); {
		r := ws.Next(t, "live", time.Until(deadline))
		var out struct {
			DeliveryUpdated struct{ EventID, Status string }
		}
		if err := json.Unmarshal(r.Data, &out); err != nil || len(r.Errors) > 0 {
			t.Fatalf("live feed: %s %v", r.Data, r.Errors)
		}
		delete(want, out.DeliveryUpdated.EventID+" "+out.DeliveryUpdated.Status)
	}
	if len(want) > 0 {
		t.Errorf("the live feed never showed %v", want)
	}

	// The endpoint's statistics count the three attempts.
	var stats struct {
		Node struct {
			Stats struct {
				Total struct {
					Attempts struct{ Total, Succeeded, Retryable, Permanent int }
				}
			}
		}
	}
	if !heraldtest.Eventually(30*time.Second, func() bool {
		s.Do(s.Token, `query($e: ID!) { node(id: $e) { ... on Endpoint { stats(window: "1h", bucket: "1h") { total { attempts { total succeeded retryable permanent } } } } } }`,
			map[string]any{"e": epID}).Decode(t, &stats)
		a := stats.Node.Stats.Total.Attempts
		return a.Total == 3 && a.Succeeded == 2 && a.Retryable == 1
	}) {
		t.Errorf("endpoint statistics: %+v, want 3 attempts: 2 succeeded, 1 retryable", stats.Node.Stats.Total.Attempts)
	}

	// The metrics count them under the destination type.
	got := map[string]float64{}
	for _, m := range s.Metrics()["herald_attempts_total"].GetMetric() {
		if label(m, "destination") == "nats" {
			got[label(m, "result")] = m.GetCounter().GetValue()
		}
	}
	if got["success"] != 2 || got["retryable"] != 1 {
		t.Errorf("herald_attempts_total{destination=\"nats\"} = %v, want success 2 and retryable 1", got)
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
