// Package listener is the LISTENER destination type: temporary endpoints
// that `herald listen` opens and holds, delivered over the websocket of its
// session instead of HTTP. The CLI forwards each delivery, with Herald's
// headers and signature, to a local URL and reports the local answer back,
// which becomes the attempt's outcome like any HTTP answer.
//
// A listener's session lives on one replica: the process whose Hub holds
// it. Its target tells the engine so (destination.Held), and the engine
// claims the listener's deliveries only there, one at a time, in the order
// they fall due; while no replica holds a session, deliveries wait in the
// store and use no attempts. A session that ends (the CLI disconnected,
// was found dead, or reconnected, here or elsewhere) interrupts the
// attempt it waits for: the delivery is due again, for the next session.
package listener

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/destination/httpdest"
	"github.com/heraldhq/herald/secret"
	"github.com/heraldhq/herald/webhook"
)

// Type is the listeners' endpoint type.
const Type destination.Type = "LISTENER"

// ReportGrace is how much longer than the endpoint's timeout an attempt
// waits for the CLI's report: the time for the push and the report to
// cross the network. It stays within the engine's lease margin.
const ReportGrace = 2 * time.Second

// Spec declares the LISTENER type. Listeners are created by
// createListener, not createEndpoint (the type is managed); their
// deliveries go through hub (nil: this process holds no sessions, and its
// engine sends nothing to listeners).
func Spec(hub *Hub) *destination.Spec {
	return &destination.Spec{
		Type:    Type,
		Name:    "Listener",
		Summary: "Delivers over a herald listen session (herald listen --forward-to), which forwards each event to a local URL: for development. Created by createListener.",
		Managed: true,
		Open: func(env destination.Env) (destination.Driver, error) {
			return &driver{hub: hub, env: env}, nil
		},
	}
}

type driver struct {
	hub *Hub
	env destination.Env
}

func (d *driver) Prepare(ep *destination.Endpoint) (destination.Target, error) {
	t := &target{d: d, id: ep.ID, url: ep.URL, timeout: ep.Timeout}
	if t.timeout <= 0 {
		t.timeout = webhook.DefaultTimeout
	}
	return t, nil
}

func (d *driver) Close() error { return nil }

// target is one listener.
type target struct {
	d       *driver
	id      string
	url     string
	timeout time.Duration
}

var _ destination.Held = (*target)(nil)

func (t *target) Info() destination.Info {
	return destination.Info{Address: t.url, System: "herald_listen"}
}

// Holding implements destination.Held: a session of the listener is here.
func (t *target) Holding() bool { return t.d.hub.Holding(t.id) }

// Send pushes the delivery to the listener's session and waits for its
// report, up to the endpoint's timeout plus ReportGrace. Without a session
// here, if the session ends before it reports, or if its connection stayed
// silent since the push (a dead connection the session has not found out
// yet), the attempt is Interrupted: not recorded, and due again for the
// next session. A CLI that is alive but does not report times out like an
// HTTP endpoint that does not answer.
func (t *target) Send(ctx context.Context, m *destination.Message) *destination.Result {
	now := t.d.env.Now
	started := now()
	r := &destination.Result{Started: started, RequestURL: t.url}
	interrupted := func(why string) *destination.Result {
		r.Completed = now()
		r.Outcome, r.Error = destination.Interrupted, why
		return r
	}
	s := t.d.hub.session(t.id)
	if s == nil {
		return interrupted("interrupted: the listener's session is not on this replica")
	}
	p := &Push{
		DeliveryID: m.DeliveryID, EventID: m.ID, EventType: m.EventType, Attempt: m.Attempt, Token: newToken(),
		Body: m.Body, Headers: headers(m, started, t.d.env.UserAgent), Timeout: t.timeout,
	}
	r.RequestHeaders = recorded(p.Headers)
	reply := s.expect(p)
	defer s.forget(p.Token)
	wait := time.NewTimer(t.timeout + ReportGrace)
	defer wait.Stop()
	timedOut := func() *destination.Result {
		if s.silentSince(started) {
			// Nothing came from the CLI since the push, not even a
			// ping: its connection is likely dead, which the session
			// finds out within seconds. The delivery waits for the
			// next session rather than use an attempt.
			return interrupted("interrupted: the listener's connection has been silent since the delivery was pushed; it is pushed again to the next session")
		}
		r.Completed = now()
		r.Outcome, r.Error = destination.Retryable, "timeout: herald listen did not report the local answer within "+(t.timeout+ReportGrace).String()
		return r
	}
	select {
	case s.pushes <- p:
	case <-s.done:
		return interrupted("interrupted: the listener's session ended before the delivery was pushed")
	case <-ctx.Done():
		return interrupted("interrupted: Herald was shutting down")
	case <-wait.C:
		return timedOut()
	}
	select {
	case rep := <-reply:
		return t.result(r, rep, now())
	case <-s.done:
		return interrupted("interrupted: the listener's session ended before it reported the local answer; the delivery is pushed again to its next session")
	case <-ctx.Done():
		return interrupted("interrupted: Herald was shutting down")
	case <-wait.C:
		return timedOut()
	}
}

// result makes the attempt's result of a report: the local answer is
// classified as an HTTP endpoint's would be, except that a 410 does not
// disable the listener.
func (t *target) result(r *destination.Result, rep Report, completed time.Time) *destination.Result {
	r.Completed = completed
	if r.Completed.Before(r.Started) {
		r.Completed = r.Started
	}
	r.Status = rep.Status
	r.ResponseHeaders = boundHeaders(rep.Headers)
	r.ResponseBody, r.Truncated = truncate(rep.Body, t.d.env.MaxResponseBody)
	if rep.Status == 0 {
		msg := strings.TrimSpace(rep.Error)
		if msg == "" {
			msg = "no answer"
		}
		r.Outcome, r.Error = destination.Retryable, "local: "+truncateError(msg)
		return r
	}
	r.Outcome = httpdest.Classify(rep.Status)
	if r.Outcome != destination.Delivered {
		r.Error = "HTTP " + strconv.Itoa(rep.Status) + " from the local receiver"
	}
	switch rep.Status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		r.Overloaded = true
	}
	if r.Outcome.Retries() {
		for _, h := range rep.Headers {
			if strings.EqualFold(h.Name, "Retry-After") {
				r.RetryAfter = httpdest.RetryAfter(h.Value, completed)
			}
		}
		if rep.Status == http.StatusTooManyRequests || rep.Status == http.StatusServiceUnavailable {
			r.Pause = r.RetryAfter
		}
	}
	return r
}

// headers returns the request headers a delivery is forwarded with, as an
// HTTP endpoint gets them: a transformation's extra headers, then the
// content type, the user agent and Herald's own (which win), in HTTP's
// canonical form, sorted by name.
func headers(m *destination.Message, at time.Time, userAgent string) []webhook.Header {
	h := make(http.Header, 10+len(m.Extra))
	for _, x := range m.Extra {
		h[http.CanonicalHeaderKey(x.Name)] = []string{x.Value}
	}
	h["Content-Type"] = []string{"application/json"}
	h["User-Agent"] = []string{userAgent}
	m.Headers(at, func(name, value string) { h[name] = []string{value} })
	out := make([]webhook.Header, 0, len(h))
	for name, vs := range h {
		out = append(out, webhook.Header{Name: name, Value: vs[0]})
	}
	destination.SortHeaders(out)
	return out
}

// recorded returns headers as the attempt's log keeps them: credentials
// (a transformation's) masked.
func recorded(hs []webhook.Header) []webhook.Header {
	return secret.MaskHeaders(hs)
}

// Bounds of what a report may make the attempt's log keep.
const (
	maxReportHeaders  = 64
	maxHeaderValue    = 4 << 10
	maxReportErrorLen = 1 << 10
)

func boundHeaders(hs []webhook.Header) []webhook.Header {
	if len(hs) > maxReportHeaders {
		hs = hs[:maxReportHeaders]
	}
	out := make([]webhook.Header, len(hs))
	for i, h := range hs {
		h.Value, _ = truncate(h.Value, maxHeaderValue)
		h.Name, _ = truncate(h.Name, 256)
		out[i] = h
	}
	destination.SortHeaders(out)
	return out
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) (string, bool) {
	if n <= 0 || len(s) <= n {
		return s, false
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n], true
}

func truncateError(s string) string {
	out, cut := truncate(s, maxReportErrorLen)
	if cut {
		out += "…"
	}
	return out
}
