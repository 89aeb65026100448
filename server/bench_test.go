package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// BenchmarkDelivery_SinglePublishes measures one delivery end to end in
// one process: a publishEvent call over HTTP (as 32 clients make them),
// its commit, the signed request to a receiver and the attempt recorded.
// The timer stops when the receiver has every event and the endpoint's
// success count says every attempt is recorded. Its allocations per
// operation are what the whole path allocates per delivery (the client's
// and the receiver's included), a figure the machine's load does not move.
func BenchmarkDelivery_SinglePublishes(b *testing.B) {
	s := heraldtest.Start(b)
	var got atomic.Int64
	rc := heraldtest.NewReceiver(b, func(_ int, w http.ResponseWriter, _ *http.Request) {
		got.Add(1)
		w.WriteHeader(http.StatusOK)
	})
	ep, _ := s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL, "name": "bench"})
	payload := json.RawMessage(`{"orderId":"ord_00000042","customer":{"id":"cus_4711","email":"ada@example.com","name":"Ada Lovelace"},"currency":"EUR","total":4990,"items":[{"sku":"TSHIRT-M","quantity":2,"price":2495}]}`)
	body, err := json.Marshal(map[string]any{
		"query":     `mutation($in: PublishEventInput!) { publishEvent(input: $in) { id } }`,
		"variables": map[string]any{"in": map[string]any{"eventType": "order.created", "payload": payload}},
	})
	if err != nil {
		b.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	hc := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	commits0, events0 := publishCommits(b, s.URL)
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, s.URL+"/graphql", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+s.Token)
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("HTTP %d", resp.StatusCode)
				return
			}
		}
	})
	deadline := time.Now().Add(time.Minute)
	for {
		var out struct {
			Node struct{ SuccessCount int }
		}
		s.As(b, s.Token).Must(&out, `query($id: ID!) { node(id: $id) { ... on Endpoint { successCount } } }`, map[string]any{"id": ep})
		if out.Node.SuccessCount >= b.N && got.Load() >= int64(b.N) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d deliveries recorded", out.Node.SuccessCount, b.N)
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	commits, events := publishCommits(b, s.URL)
	b.ReportMetric((events-events0)/(commits-commits0), "events/commit")
	b.ReportMetric(0, "ns/op") // wall time on a shared machine says little
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "wall-ns/delivery")
}

// publishCommits reads the publisher's commits and the events they held
// so far from the server's metrics.
func publishCommits(b *testing.B, url string) (commits, events float64) {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	for _, m := range families["herald_publisher_batch_size"].GetMetric() {
		commits += float64(m.GetHistogram().GetSampleCount())
		events += m.GetHistogram().GetSampleSum()
	}
	return commits, events
}
