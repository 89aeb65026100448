package dispatch

import (
	"context"
	"github.com/heraldhq/herald/destination"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// instrumentationName names the engine's tracer.
const instrumentationName = "github.com/heraldhq/herald/dispatch"

// telemetry is what the engine reports to an operator: metrics (always a
// Metrics, a no-op one by default), traces (a tracer only when tracing is
// on: with none, nothing is traced, stored or sent, and nothing is paid
// for it), and the attempts in flight.
type telemetry struct {
	metrics  Metrics
	tracer   trace.Tracer // nil: tracing is off
	inflight atomic.Int64
}

func newTelemetry(m Metrics, tp trace.TracerProvider) *telemetry {
	t := &telemetry{metrics: m}
	if tp != nil {
		t.tracer = tp.Tracer(instrumentationName)
	}
	return t
}

// InFlight returns how many attempts are being sent now.
func (e *Engine) InFlight() int { return int(e.tel.inflight.Load()) }

// Backlog returns what waits to be sent now (see Driver.Backlog).
func (e *Engine) Backlog(ctx context.Context) (Backlog, error) {
	return e.cfg.Driver.Backlog(ctx, e.cfg.Now().UTC())
}

// traceParent returns the W3C traceparent of a span context, or "".
func traceParent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
}

// parseTraceParent returns the span context of a W3C traceparent (invalid
// if s is not one).
func parseTraceParent(s string) trace.SpanContext {
	if s == "" {
		return trace.SpanContext{}
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": s})
	return trace.SpanContextFromContext(ctx)
}

// startPublish starts the span of a publish call, a child of the caller's
// span (the GraphQL operation), if tracing is on.
func (t *telemetry) startPublish(ctx context.Context, appID string, events int) (context.Context, trace.Span) {
	if t.tracer == nil {
		return ctx, nil
	}
	return t.tracer.Start(ctx, "herald.publish", trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(attribute.String("herald.app_id", appID), attribute.Int("herald.events", events)))
}

// endPublish ends a publish span with what the publish stored: the event
// IDs and the fan-out, the deliveries it created.
func endPublish(span trace.Span, evs []*Event, err error) {
	if span == nil {
		return
	}
	defer span.End()
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return
	}
	fanout, existing := 0, 0
	ids := make([]string, 0, len(evs))
	for _, ev := range evs {
		ids = append(ids, ev.ID)
		if ev.Existing {
			existing++
			continue
		}
		fanout += ev.DeliveryCount
	}
	span.SetAttributes(attribute.Int("herald.fanout", fanout), attribute.StringSlice("herald.event_ids", ids))
	if existing > 0 {
		span.SetAttributes(attribute.Int("herald.events_existing", existing))
	}
}

// sendAttempt sends a job's attempt as a client or producer span (when
// tracing is on) linked to the span that published its event, carries
// that span's traceparent in the request or message, and reports the
// attempt to the metrics.
func (e *Engine) sendAttempt(j *job) *destination.Result {
	t := e.tel
	var span trace.Span
	if t.tracer != nil {
		span = t.startAttempt(j)
		j.attempt.TraceParent = traceParent(span.SpanContext())
	}
	t.inflight.Add(1)
	resp := j.attempt.send(e.sendCtx, e.cfg.Now(), e.cfg.Policy)
	t.inflight.Add(-1)
	t.metrics.AttemptFinished(j.attempt.Endpoint.Type, resp.Outcome, resp.Duration())
	if resp.ProxyFailure() {
		t.metrics.ProxyFailed(j.attempt.Endpoint.Type)
	}
	if span != nil {
		endAttempt(span, j, resp)
	}
	return resp
}

// startAttempt starts an attempt's span: an HTTP client span named for
// its method, or a messaging producer span ("publish orders") for a
// broker, with the target's address as OpenTelemetry's conventions name
// it.
func (t *telemetry) startAttempt(j *job) trace.Span {
	a := &j.attempt
	info := a.Endpoint.target.Info()
	attrs := []attribute.KeyValue{
		attribute.String("herald.endpoint_id", j.EndpointID),
		attribute.String("herald.app_id", j.AppID),
		attribute.String("herald.delivery_id", j.DeliveryID),
		attribute.String("herald.event_id", j.EventID),
		attribute.String("herald.event_type", j.EventType),
		attribute.Int("herald.attempt", a.Number),
		attribute.String("herald.trigger", j.trigger),
		attribute.String("herald.destination_type", string(a.Endpoint.Type)),
	}
	name, kind := "POST", trace.SpanKindClient
	if info.System == "http" {
		attrs = append(attrs, attribute.String("http.request.method", "POST"), attribute.String("url.full", info.Address))
	} else {
		name, kind = "publish "+info.Destination, trace.SpanKindProducer
		attrs = append(attrs, attribute.String("messaging.system", info.System), attribute.String("messaging.operation.type", "publish"),
			attribute.String("messaging.destination.name", info.Destination), attribute.String("messaging.message.id", j.EventID))
	}
	if info.Host != "" {
		attrs = append(attrs, attribute.String("server.address", info.Host))
	}
	if info.Port != 0 {
		attrs = append(attrs, attribute.Int("server.port", info.Port))
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(kind), trace.WithNewRoot(), trace.WithAttributes(attrs...)}
	if pub := parseTraceParent(j.TraceParent); pub.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: pub,
			Attributes: []attribute.KeyValue{attribute.String("herald.link", "publish")}}))
	}
	_, span := t.tracer.Start(context.Background(), name, opts...)
	return span
}

// endAttempt ends an attempt's span with its outcome and the retry
// decision as the attempt's own data makes it (the recorder may still fail
// the delivery instead of retrying it if its endpoint was disabled
// meanwhile).
func endAttempt(span trace.Span, j *job, resp *destination.Result) {
	a := &j.attempt
	decision := "succeeded"
	switch {
	case resp.Outcome == destination.Interrupted:
		decision = "released" // due again; not recorded
	case resp.Outcome == destination.Skipped:
		decision = "skipped"
	case resp.Outcome != destination.Delivered:
		d := decide(resp, j.trigger, a.Number, a.Endpoint.Retry, true, 0.5)
		if d.status == "RETRYING" {
			decision = "retry"
			span.SetAttributes(attribute.Int64("herald.retry_in_ms", d.retryIn.Milliseconds()))
		} else {
			decision = "fail"
		}
	}
	span.SetAttributes(attribute.String("herald.outcome", resp.Outcome.String()), attribute.String("herald.decision", decision))
	if resp.Status != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", resp.Status))
	}
	if resp.Outcome != destination.Delivered && resp.Outcome != destination.Skipped {
		errType := resp.Error
		if resp.Status != 0 {
			errType = strconv.Itoa(resp.Status)
		}
		span.SetAttributes(attribute.String("error.type", errType))
		span.SetStatus(codes.Error, resp.Error)
	}
	span.End(trace.WithTimestamp(resp.Completed))
}

// maxRecordLinks bounds the links of a recorder span to the attempts it
// records.
const maxRecordLinks = 128

// startRecord starts the span of one recorder transaction, if tracing is
// on, linked to (up to maxRecordLinks of) the attempt spans it records.
func (t *telemetry) startRecord(ctx context.Context, batch []*result) (context.Context, trace.Span) {
	if t.tracer == nil {
		return ctx, nil
	}
	var links []trace.Link
	for _, res := range batch {
		if len(links) == maxRecordLinks {
			break
		}
		if sc := parseTraceParent(res.job.attempt.TraceParent); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	return t.tracer.Start(ctx, "herald.record", trace.WithSpanKind(trace.SpanKindInternal), trace.WithNewRoot(),
		trace.WithAttributes(attribute.Int("herald.results", len(batch))), trace.WithLinks(links...))
}

// endRecord ends a recorder span and reports the commit to the metrics.
func (t *telemetry) endRecord(span trace.Span, results, failed int, took time.Duration, err error) {
	t.metrics.RecorderCommit(results, took, err)
	if span == nil {
		return
	}
	if failed > 0 {
		span.SetAttributes(attribute.Int("herald.results_refused", failed))
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
