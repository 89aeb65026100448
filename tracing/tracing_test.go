package tracing_test

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/heraldhq/herald/internal/brokers"
	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/server"
	"github.com/heraldhq/herald/tenant"
	"github.com/heraldhq/herald/tracing"
)

// collector is an OTLP/HTTP peer: it decodes what it receives with the
// OTLP protobuf types and keeps the spans.
type collector struct {
	*httptest.Server
	mu       sync.Mutex
	spans    []*tracepb.Span
	services []string
}

func newCollector(t *testing.T) *collector {
	c := &collector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("collector got %s %s (%s)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			gz, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = gz
		}
		raw, _ := io.ReadAll(body)
		var req collectorpb.ExportTraceServiceRequest
		if err := proto.Unmarshal(raw, &req); err != nil {
			t.Errorf("collector: decode export: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					c.services = append(c.services, a.GetValue().GetStringValue())
				}
			}
			for _, ss := range rs.ScopeSpans {
				c.spans = append(c.spans, ss.Spans...)
			}
		}
		c.mu.Unlock()
		out, _ := proto.Marshal(&collectorpb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(c.Close)
	return c
}

// span waits for a span that matches and returns it.
func (c *collector) span(t *testing.T, what string, match func(*tracepb.Span) bool) *tracepb.Span {
	t.Helper()
	var found *tracepb.Span
	if !heraldtest.Eventually(10*time.Second, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, s := range c.spans {
			if match(s) {
				found = s
				return true
			}
		}
		return false
	}) {
		c.mu.Lock()
		defer c.mu.Unlock()
		t.Fatalf("no %s span among %d exported: %s", what, len(c.spans), describe(c.spans...))
	}
	return found
}

func attr(s *tracepb.Span, key string) *commonpb.AnyValue {
	for _, a := range s.Attributes {
		if a.Key == key {
			return a.Value
		}
	}
	return nil
}

func hexID(b []byte) string { return hex.EncodeToString(b) }

// describe renders spans as the closing note shows them.
func describe(spans ...*tracepb.Span) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "\n%s %q trace=%s span=%s parent=%s %s",
			strings.TrimPrefix(s.Kind.String(), "SPAN_KIND_"), s.Name, hexID(s.TraceId), hexID(s.SpanId), hexID(s.ParentSpanId),
			time.Duration(s.EndTimeUnixNano-s.StartTimeUnixNano).Round(time.Microsecond))
		attrs := slices.Clone(s.Attributes)
		sort.Slice(attrs, func(i, j int) bool { return attrs[i].Key < attrs[j].Key })
		for _, a := range attrs {
			fmt.Fprintf(&b, "\n    %s = %s", a.Key, valueString(a.Value))
		}
		for _, l := range s.Links {
			fmt.Fprintf(&b, "\n    link → trace=%s span=%s", hexID(l.TraceId), hexID(l.SpanId))
		}
		if s.Status != nil && s.Status.Code != tracepb.Status_STATUS_CODE_UNSET {
			fmt.Fprintf(&b, "\n    status = %s %q", s.Status.Code, s.Status.Message)
		}
	}
	return b.String()
}

func valueString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return fmt.Sprintf("%q", x.StringValue)
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *commonpb.AnyValue_ArrayValue:
		var parts []string
		for _, e := range x.ArrayValue.Values {
			parts = append(parts, valueString(e))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return v.String()
}

func TestTracing_FollowsAPublishToItsDeliveryOverOTLP(t *testing.T) {
	col := newCollector(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", col.URL)
	t.Setenv("OTEL_SERVICE_NAME", "herald-under-test")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
	tp, err := tracing.FromEnv(context.Background(), "test")
	if err != nil || tp == nil {
		t.Fatalf("FromEnv = %v, %v; want a provider", tp, err)
	}
	defer tp.Shutdown(context.Background()) //nolint:errcheck
	s := heraldtest.Start(t, func(c *server.Config) { c.TracerProvider = tp })
	rc := heraldtest.NewReceiver(t, nil)
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.Hook("/hook")})

	// The publishing client has a trace of its own.
	const clientTrace, clientSpan = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	var out struct{ PublishEvent struct{ ID string } }
	s.DoWith(s.Token, http.Header{"Traceparent": {"00-" + clientTrace + "-" + clientSpan + "-01"}},
		`mutation Publish { publishEvent(input: {eventType: "order.created", payload: {orderId: "ord_1"}}) { id } }`, nil).Decode(t, &out)
	req := rc.WaitRequests(t, 1, 10*time.Second)[0]

	op := col.span(t, "GraphQL operation", func(s *tracepb.Span) bool { return s.Name == "mutation Publish" })
	if hexID(op.TraceId) != clientTrace || hexID(op.ParentSpanId) != clientSpan || op.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("the operation span does not continue the client's trace: %s", describe(op))
	}
	pub := col.span(t, "publish", func(s *tracepb.Span) bool { return s.Name == "herald.publish" })
	if !slices.Equal(pub.TraceId, op.TraceId) || !slices.Equal(pub.ParentSpanId, op.SpanId) || attr(pub, "herald.fanout").GetIntValue() != 1 {
		t.Errorf("the publish span is not the operation's child with a fan-out of 1: %s", describe(pub))
	}
	att := col.span(t, "attempt", func(s *tracepb.Span) bool { return s.Name == "POST" })
	if att.Kind != tracepb.Span_SPAN_KIND_CLIENT || len(att.Links) != 1 || !slices.Equal(att.Links[0].SpanId, pub.SpanId) ||
		!slices.Equal(att.Links[0].TraceId, pub.TraceId) {
		t.Errorf("the attempt is not a client span linked to the publish: %s", describe(att))
	}
	if attr(att, "http.response.status_code").GetIntValue() != 200 || attr(att, "herald.decision").GetStringValue() != "succeeded" ||
		attr(att, "herald.endpoint_id").GetStringValue() == "" || attr(att, "url.full").GetStringValue() != rc.Hook("/hook") {
		t.Errorf("the attempt span lacks its endpoint, status or decision: %s", describe(att))
	}
	want := "00-" + hexID(att.TraceId) + "-" + hexID(att.SpanId) + "-01"
	if got := req.Header.Get("Traceparent"); got != want {
		t.Errorf("the webhook carried traceparent %q, want the attempt span's %q", got, want)
	}
	rec := col.span(t, "recorder commit", func(s *tracepb.Span) bool { return s.Name == "herald.record" })
	if len(rec.Links) != 1 || !slices.Equal(rec.Links[0].SpanId, att.SpanId) {
		t.Errorf("the recorder's commit does not link to the attempt it recorded: %s", describe(rec))
	}
	d := s.Deliveries(s.Token, out.PublishEvent.ID)
	if len(d) != 1 || len(d[0].Attempts.Edges) != 1 {
		t.Fatalf("deliveries = %+v", d)
	}
	var logged string
	for _, h := range d[0].Attempts.Edges[0].Node.RequestHeaders {
		if strings.EqualFold(h.Name, "Traceparent") {
			logged = h.Value
		}
	}
	if logged != want {
		t.Errorf("the attempt's recorded request headers have traceparent %q, want %q", logged, want)
	}
	col.mu.Lock()
	services := slices.Compact(slices.Clone(col.services))
	col.mu.Unlock()
	if !slices.Equal(services, []string{"herald-under-test"}) {
		t.Errorf("service names = %v, want OTEL_SERVICE_NAME's", services)
	}
	t.Logf("the spans of one publish → delivery, as exported:%s", describe(op, pub, att, rec))
}

func TestTracing_OffSendsAndStoresNothing(t *testing.T) {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED"} {
		t.Setenv(k, "")
	}
	tp, err := tracing.FromEnv(context.Background(), "test")
	if err != nil || tp != nil {
		t.Fatalf("FromEnv without an endpoint = %v, %v; want tracing off", tp, err)
	}
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.Hook("/")})
	id := s.Publish(s.Token, "order.created", map[string]any{"n": 1})
	req := rc.WaitRequests(t, 1, 10*time.Second)[0]
	if tp := req.Header.Get("Traceparent"); tp != "" {
		t.Errorf("the webhook carried traceparent %q with tracing off", tp)
	}
	ev, err := s.Store().Client.Event.Get(tenant.System(context.Background()), id)
	if err != nil {
		t.Fatal(err)
	}
	if ev.TraceParent != nil {
		t.Errorf("the event stored trace_parent %q with tracing off", *ev.TraceParent)
	}
}

func TestFromEnv_HonoursTheStandardVariables(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		enabled bool
		wantErr string
	}{
		{"no endpoint", nil, false, ""},
		{"an endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true, ""},
		{"a traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true, ""},
		{"disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}, false, ""},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"}, false, ""},
		{"grpc", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, false, "http/protobuf"},
		{"zipkin", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "zipkin"}, false, "otlp"},
		{"bad disabled", map[string]string{"OTEL_SDK_DISABLED": "maybe"}, false, "OTEL_SDK_DISABLED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED",
				"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"} {
				t.Setenv(k, tt.env[k])
			}
			tp, err := tracing.FromEnv(context.Background(), "test")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (tp != nil) != tt.enabled {
				t.Fatalf("tracing on = %v, want %v", tp != nil, tt.enabled)
			}
			if tp != nil {
				_ = tp.Shutdown(context.Background())
			}
		})
	}
}

func TestTracing_RetriesLinkToThePublishThroughTheDatabase(t *testing.T) {
	col := newCollector(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", col.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
	tp, err := tracing.FromEnv(context.Background(), "test")
	if err != nil || tp == nil {
		t.Fatalf("FromEnv = %v, %v", tp, err)
	}
	defer tp.Shutdown(context.Background()) //nolint:errcheck
	s := heraldtest.Start(t, func(c *server.Config) { c.TracerProvider = tp })
	rc := heraldtest.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	s.CreateEndpoint(s.Token, map[string]any{"url": rc.Hook("/"), "retryPolicy": map[string]any{"initialDelay": "0s", "maxDelay": "0s"}})
	s.Publish(s.Token, "order.created", map[string]any{"n": 1})
	reqs := rc.WaitRequests(t, 2, 10*time.Second)

	pub := col.span(t, "publish", func(s *tracepb.Span) bool { return s.Name == "herald.publish" })
	first := col.span(t, "first attempt", func(s *tracepb.Span) bool { return s.Name == "POST" && attr(s, "herald.attempt").GetIntValue() == 1 })
	second := col.span(t, "second attempt", func(s *tracepb.Span) bool { return s.Name == "POST" && attr(s, "herald.attempt").GetIntValue() == 2 })
	if attr(first, "herald.decision").GetStringValue() != "retry" || first.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("the failed attempt's span does not say it will be retried: %s", describe(first))
	}
	// The retry was claimed from the database: the link comes from the
	// event's stored traceparent.
	for _, a := range []*tracepb.Span{first, second} {
		if len(a.Links) != 1 || !slices.Equal(a.Links[0].SpanId, pub.SpanId) {
			t.Errorf("attempt %d is not linked to the publish: %s", attr(a, "herald.attempt").GetIntValue(), describe(a))
		}
	}
	if got := reqs[1].Header.Get("Traceparent"); !strings.Contains(got, hexID(second.SpanId)) {
		t.Errorf("the retry carried traceparent %q, want its own span %s", got, hexID(second.SpanId))
	}
}

// TestTracing_ABrokerPublishIsAProducerSpanWhoseTraceTheMessageCarries:
// an attempt on a broker endpoint (NATS JetStream, Debian's nats-server)
// is a producer span with the messaging attributes, linked to the
// publish, and the message carries its traceparent as a header, as a
// webhook does.
func TestTracing_ABrokerPublishIsAProducerSpanWhoseTraceTheMessageCarries(t *testing.T) {
	b := brokers.StartNATS(t, brokers.NATSOptions{})
	nc, err := natsgo.Connect(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "WEBHOOKS", Subjects: []string{"webhooks.>"}})
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", col.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
	tp, err := tracing.FromEnv(context.Background(), "test")
	if err != nil || tp == nil {
		t.Fatalf("FromEnv = %v, %v", tp, err)
	}
	defer tp.Shutdown(context.Background()) //nolint:errcheck
	s := heraldtest.Start(t, func(c *server.Config) { c.TracerProvider = tp })
	s.CreateEndpoint(s.Token, map[string]any{"type": "NATS", "nats": map[string]any{"url": b.URL, "subject": "webhooks.{eventType}"}})
	id := s.Publish(s.Token, "order.created", map[string]any{"n": 1})
	s.WaitDelivery(s.Token, id, 30*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })

	pub := col.span(t, "publish", func(s *tracepb.Span) bool { return s.Name == "herald.publish" })
	att := col.span(t, "attempt", func(s *tracepb.Span) bool { return s.Name == "publish webhooks.{eventType}" })
	if att.Kind != tracepb.Span_SPAN_KIND_PRODUCER || len(att.Links) != 1 || !slices.Equal(att.Links[0].SpanId, pub.SpanId) {
		t.Errorf("the attempt is not a producer span linked to the publish: %s", describe(att))
	}
	if attr(att, "messaging.system").GetStringValue() != "nats" || attr(att, "herald.destination_type").GetStringValue() != "NATS" ||
		attr(att, "messaging.message.id").GetStringValue() != id || attr(att, "herald.decision").GetStringValue() != "succeeded" {
		t.Errorf("the attempt span lacks its messaging attributes or decision: %s", describe(att))
	}
	m, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := "00-" + hexID(att.TraceId) + "-" + hexID(att.SpanId) + "-01"
	if got := m.Header.Get("traceparent"); got != want {
		t.Errorf("the message carried traceparent %q, want the attempt span's %q", got, want)
	}
}
