package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"sync"
	"time"

	"github.com/heraldhq/herald/catalog"
	"github.com/heraldhq/herald/tenant"
)

// maxFailedSamples bounds how many failed deliveries one webhook.failed
// event lists; it counts all of them.
const maxFailedSamples = 10

// FailedPayload is the payload of a webhook.failed event: deliveries to
// one endpoint that failed for good. The first failure of an endpoint is
// reported at once; the ones that follow within the engine's MetaWindow
// are gathered into one event at its end, so an outage of many endpoints
// cannot cascade into a storm of meta-events.
type FailedPayload struct {
	EndpointID string `json:"endpointId"`
	// URL is the endpoint's URL without query string or credentials.
	URL string `json:"url"`
	// The first delivery this event reports.
	DeliveryID         string `json:"deliveryId"`
	EventID            string `json:"eventId"`
	EventType          string `json:"eventType"`
	Attempts           int    `json:"attempts"`
	LastResponseStatus *int   `json:"lastResponseStatus"`
	LastError          string `json:"lastError"`
	// FailedDeliveries counts the deliveries this event reports; the
	// first maxFailedSamples are listed in Deliveries.
	FailedDeliveries int              `json:"failedDeliveries"`
	Deliveries       []FailedDelivery `json:"deliveries"`
	FirstFailedAt    time.Time        `json:"firstFailedAt"`
	LastFailedAt     time.Time        `json:"lastFailedAt"`
}

// FailedDelivery is one delivery in a webhook.failed event.
type FailedDelivery struct {
	DeliveryID         string `json:"deliveryId"`
	EventID            string `json:"eventId"`
	EventType          string `json:"eventType"`
	Attempts           int    `json:"attempts"`
	LastResponseStatus *int   `json:"lastResponseStatus"`
	LastError          string `json:"lastError"`
}

// DisabledPayload is the payload of a webhook.disabled event.
type DisabledPayload struct {
	EndpointID string `json:"endpointId"`
	// URL is the endpoint's URL without query string or credentials.
	URL                 string    `json:"url"`
	Reason              string    `json:"reason"`
	ConsecutiveFailures int       `json:"consecutiveFailures"`
	DisabledAt          time.Time `json:"disabledAt"`
}

// metaCoalescer gathers Herald's own events about endpoints (webhook.*)
// and publishes them on a goroutine of its own, at most one webhook.failed
// per endpoint per window. Meta-events are notifications: those gathered
// and not yet published when the process dies are lost.
type metaCoalescer struct {
	window  time.Duration
	now     func() time.Time
	publish func(appID, eventType string, payload any, exclude string)

	mu      sync.Mutex
	digests map[string]*failedDigest // per endpoint
	last    map[string]time.Time     // when an endpoint's last report went out
	offs    []DisabledPayload        // webhook.disabled events to publish
	apps    map[string]string        // endpoint → app of offs
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

type failedDigest struct {
	appID   string
	payload FailedPayload
	due     time.Time
}

func newMetaCoalescer(window time.Duration, now func() time.Time, publish func(appID, eventType string, payload any, exclude string)) *metaCoalescer {
	return &metaCoalescer{
		window: window, now: now, publish: publish,
		digests: make(map[string]*failedDigest),
		last:    make(map[string]time.Time),
		apps:    make(map[string]string),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
}

func (m *metaCoalescer) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// failed reports a delivery that failed for good.
func (m *metaCoalescer) failed(f failedDelivery) {
	var status *int
	if f.LastResponseStatus != 0 {
		s := f.LastResponseStatus
		status = &s
	}
	sample := FailedDelivery{DeliveryID: f.DeliveryID, EventID: f.EventID, EventType: f.EventType, Attempts: f.Attempts,
		LastResponseStatus: status, LastError: f.LastError}
	m.mu.Lock()
	d := m.digests[f.EndpointID]
	if d == nil {
		d = &failedDigest{appID: f.AppID, due: m.last[f.EndpointID].Add(m.window), payload: FailedPayload{
			EndpointID: f.EndpointID, URL: redactURL(f.URL), DeliveryID: f.DeliveryID, EventID: f.EventID, EventType: f.EventType,
			Attempts: f.Attempts, LastResponseStatus: status, LastError: f.LastError, FirstFailedAt: f.At,
		}}
		m.digests[f.EndpointID] = d
	}
	d.payload.FailedDeliveries++
	d.payload.LastFailedAt = f.At
	if len(d.payload.Deliveries) < maxFailedSamples {
		d.payload.Deliveries = append(d.payload.Deliveries, sample)
	}
	m.mu.Unlock()
	m.poke()
}

// disabled reports an endpoint disabled for its failures.
func (m *metaCoalescer) disabled(d disabledEndpoint) {
	m.mu.Lock()
	m.offs = append(m.offs, DisabledPayload{EndpointID: d.ID, URL: redactURL(d.URL), Reason: d.reason,
		ConsecutiveFailures: d.consecutive, DisabledAt: m.now().UTC()})
	m.apps[d.ID] = d.AppID
	m.mu.Unlock()
	m.poke()
}

// due takes the reports to publish now and returns when the next is due.
func (m *metaCoalescer) due(all bool) (failed []*failedDigest, disabled []DisabledPayload, apps map[string]string, next time.Time) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for ep, d := range m.digests {
		if all || !now.Before(d.due) {
			failed = append(failed, d)
			delete(m.digests, ep)
			m.last[ep] = now
		} else if next.IsZero() || d.due.Before(next) {
			next = d.due
		}
	}
	for ep, t := range m.last {
		if now.Sub(t) > m.window {
			if _, pending := m.digests[ep]; !pending {
				delete(m.last, ep)
			}
		}
	}
	disabled, m.offs = m.offs, nil
	apps, m.apps = m.apps, make(map[string]string)
	return failed, disabled, apps, next
}

func (m *metaCoalescer) emit(all bool) time.Time {
	failed, disabled, apps, next := m.due(all)
	for _, d := range failed {
		m.publish(d.appID, catalog.TypeWebhookFailed, d.payload, d.payload.EndpointID)
	}
	for _, d := range disabled {
		m.publish(apps[d.EndpointID], catalog.TypeWebhookDisabled, d, d.EndpointID)
	}
	return next
}

func (m *metaCoalescer) run() {
	defer close(m.done)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			m.emit(true)
			return
		case <-m.wake:
		case <-t.C:
		}
		next := m.emit(false)
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(m.now()), time.Millisecond)
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(wait)
	}
}

// close publishes what was gathered and stops.
func (m *metaCoalescer) close() {
	close(m.stop)
	<-m.done
}

// publishMeta publishes one of Herald's own events through the group
// commit, excluding the endpoint it is about.
func (e *Engine) publishMeta(appID, eventType string, payload any, exclude string) {
	body, err := json.Marshal(payload)
	if err != nil {
		e.log.Error("encode meta-event", "event_type", eventType, "err", err)
		return
	}
	ctx := tenant.System(context.Background())
	req := &publishReq{ctx: ctx, appID: appID, inputs: []EventInput{{EventType: eventType, Payload: body}},
		prefix: func(int) string { return "meta" }, exclude: exclude, reply: make(chan publishReply, 1)}
	switch r := e.commit(ctx, req); {
	case errors.Is(r.err, errEngineClosed) || errors.Is(r.err, ErrNotStarted):
		e.log.Warn("meta-event not published", "event_type", eventType, "endpoint_id", exclude, "err", r.err)
	case r.err != nil:
		e.log.Error("publish meta-event", "event_type", eventType, "endpoint_id", exclude, "err", r.err)
	}
}

// redactURL drops credentials and the query from a URL: query strings
// often carry tokens, and meta-events go to other endpoints.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment = nil, "", false, ""
	return u.String()
}
