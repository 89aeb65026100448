package dispatch_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// redirectChain starts a final receiver and hops receivers in front of it;
// the first hop's URL is returned with the final receiver.
func redirectChain(t *testing.T, hops int, code int) (first string, final *heraldtest.Receiver) {
	t.Helper()
	final = heraldtest.NewReceiver(t, nil)
	next := final.Hook("/final")
	for i := hops; i > 0; i-- {
		target := next
		rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target, code)
		})
		next = rc.Hook(fmt.Sprintf("/hop%d", i))
	}
	return next, final
}

func TestRedirect_FollowsUpToTwoHopsAsPOST(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		hops int
		code int
	}{{1, http.StatusFound}, {2, http.StatusTemporaryRedirect}, {2, http.StatusMovedPermanently}, {1, http.StatusPermanentRedirect}} {
		t.Run(fmt.Sprintf("%d hops %d", tc.hops, tc.code), func(t *testing.T) {
			t.Parallel()
			s := heraldtest.Start(t)
			first, final := redirectChain(t, tc.hops, tc.code)
			s.CreateEndpoint(s.Token, map[string]any{"url": first})
			evID := s.Publish(s.Token, "order.created", map[string]any{"orderId": "o9"})
			req := final.WaitRequests(t, 1, 5*time.Second)[0]
			if req.Method != http.MethodPost || !strings.Contains(string(req.Body), `"orderId":"o9"`) || req.Header.Get("Webhook-Signature") == "" {
				t.Fatalf("final hop got %s with body %s", req.Method, req.Body)
			}
			s.WaitDelivery(s.Token, evID, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "SUCCEEDED" })
		})
	}
}

func TestRedirect_ThreeHopsFailPermanently(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	first, final := redirectChain(t, 3, http.StatusFound)
	s.CreateEndpoint(s.Token, map[string]any{"url": first, "retryPolicy": fastRetries(5)})
	evID := s.Publish(s.Token, "order.created", map[string]any{})
	d := s.WaitDelivery(s.Token, evID, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" })
	if d.AttemptCount != 1 || d.LastError == nil || !strings.Contains(*d.LastError, "redirect") {
		t.Fatalf("delivery = %+v, want one attempt failing on the redirect limit", d)
	}
	if n := len(final.Requests()); n != 0 {
		t.Fatalf("the target behind the third redirect got %d requests", n)
	}
}

func TestRedirect_CredentialsNotSentToAnotherHost(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t)
	final := heraldtest.NewReceiver(t, nil)
	// Same IP, different port: a different host as far as credentials go.
	hop := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, final.Hook("/elsewhere"), http.StatusTemporaryRedirect)
	})
	s.CreateEndpoint(s.Token, map[string]any{"url": hop.URL, "auth": map[string]any{"type": "BEARER", "token": "sekrit-token-123456"}})
	s.Publish(s.Token, "order.created", map[string]any{})
	first := hop.WaitRequests(t, 1, 5*time.Second)[0]
	if first.Header.Get("Authorization") != "Bearer sekrit-token-123456" {
		t.Fatalf("original host got Authorization %q", first.Header.Get("Authorization"))
	}
	req := final.WaitRequests(t, 1, 5*time.Second)[0]
	if got := req.Header.Get("Authorization"); got != "" {
		t.Fatalf("redirect target on another host got Authorization %q", got)
	}
}

func TestRedirect_ToBlockedAddressIsRefused(t *testing.T) {
	t.Parallel()
	blocked := heraldtest.NewReceiver(t, nil)
	hop := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, blocked.Hook("/internal"), http.StatusFound)
	})
	u, err := url.Parse(hop.URL)
	if err != nil {
		t.Fatal(err)
	}
	// The policy is on; only the first hop's exact address is allowed.
	s := heraldtest.Start(t, func(c *serverConfig) {
		c.AllowPrivateDestinations = false
		c.AllowDestinations = u.Host
	})
	s.CreateEndpoint(s.Token, map[string]any{"url": hop.URL, "retryPolicy": fastRetries(3)})
	evID := s.Publish(s.Token, "order.created", map[string]any{})
	d := s.WaitDelivery(s.Token, evID, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status == "FAILED" })
	if d.AttemptCount != 1 || d.LastError == nil || !strings.Contains(*d.LastError, "loopback") {
		t.Fatalf("delivery = %+v, want one attempt refused as a loopback destination", d)
	}
	if n := len(blocked.Requests()); n != 0 {
		t.Fatalf("blocked address got %d requests", n)
	}
}

func TestDestinationPolicy_EndpointOnBlockedAddressIsRejected(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *serverConfig) { c.AllowPrivateDestinations = false })
	rc := heraldtest.NewReceiver(t, nil)
	r := s.Do(s.Token, `mutation($u: String!) { createEndpoint(input: {name: "blocked", url: $u, eventTypes: ["*"]}) { secret } }`,
		map[string]any{"u": rc.URL})
	r.WantError(t, "BAD_USER_INPUT")
	if r.Field() != "input.url" {
		t.Fatalf("field = %q, want input.url", r.Field())
	}
}
