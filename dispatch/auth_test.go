package dispatch_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/signing"
)

func hexHMAC(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// TestAuth_ReceiversAcceptEachScheme runs one receiver per auth type that
// checks the credentials the way a real receiver would, and answers 401
// otherwise; every delivery must succeed.
func TestAuth_ReceiversAcceptEachScheme(t *testing.T) {
	t.Parallel()
	const secret = "a-shared-secret-of-some-length"
	cases := []struct {
		name  string
		auth  map[string]any
		check func(r *http.Request, body []byte) error
	}{
		{"bearer", map[string]any{"type": "BEARER", "token": "tok_live_0123456789"}, func(r *http.Request, _ []byte) error {
			if r.Header.Get("Authorization") != "Bearer tok_live_0123456789" {
				return fmt.Errorf("Authorization = %q", r.Header.Get("Authorization"))
			}
			return nil
		}},
		{"basic", map[string]any{"type": "BASIC", "username": "herald", "password": "pa55word!"}, func(r *http.Request, _ []byte) error {
			u, p, ok := r.BasicAuth()
			if !ok || u != "herald" || p != "pa55word!" {
				return fmt.Errorf("basic auth = %q %q %v", u, p, ok)
			}
			return nil
		}},
		{"api key", map[string]any{"type": "API_KEY", "headerName": "X-Api-Key", "headerValue": "k-123456789"}, func(r *http.Request, _ []byte) error {
			if r.Header.Get("X-Api-Key") != "k-123456789" {
				return fmt.Errorf("X-Api-Key = %q", r.Header.Get("X-Api-Key"))
			}
			return nil
		}},
		{"hmac", map[string]any{"type": "HMAC", "headerName": "X-Hub-Signature-256", "secret": secret}, func(r *http.Request, body []byte) error {
			want := "sha256=" + hexHMAC(secret, string(body))
			if !hmac.Equal([]byte(r.Header.Get("X-Hub-Signature-256")), []byte(want)) {
				return fmt.Errorf("X-Hub-Signature-256 = %q, want %q", r.Header.Get("X-Hub-Signature-256"), want)
			}
			return nil
		}},
		{"signature", map[string]any{"type": "SIGNATURE", "secret": secret}, func(r *http.Request, body []byte) error {
			v := r.Header.Get("X-Webhook-Signature")
			var ts, sig string
			for _, part := range strings.Split(v, ",") {
				k, val, _ := strings.Cut(part, "=")
				switch k {
				case "t":
					ts = val
				case "v1":
					sig = val
				}
			}
			sec, err := strconv.ParseInt(ts, 10, 64)
			if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
				return fmt.Errorf("timestamp %q not recent", ts)
			}
			if !hmac.Equal([]byte(sig), []byte(hexHMAC(secret, ts+"."+string(body)))) {
				return fmt.Errorf("X-Webhook-Signature = %q does not verify", v)
			}
			return nil
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := heraldtest.Start(t)
			var failure atomic.Value
			rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if err := c.check(r, body); err != nil {
					failure.Store(err)
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				w.WriteHeader(http.StatusOK)
			})
			_, whsec := s.CreateEndpoint(s.Token, map[string]any{"name": c.name, "url": rc.URL, "auth": c.auth})
			evID := s.Publish(s.Token, "order.created", map[string]any{"case": c.name})
			d := s.WaitDelivery(s.Token, evID, 5*time.Second, func(d heraldtest.Delivery) bool { return d.Status != "PENDING" && d.Status != "SENDING" })
			if d.Status != "SUCCEEDED" {
				t.Fatalf("delivery %s: receiver refused: %v", d.Status, failure.Load())
			}
			// The Standard Webhooks signature is there whatever the auth.
			req := rc.Requests()[0]
			if err := signing.Verify(whsec, req.Header, req.Body, time.Minute, time.Now()); err != nil {
				t.Fatalf("webhook-signature: %v", err)
			}
			// Credentials are masked in the attempt log.
			for _, h := range d.Attempts.Edges[0].Node.RequestHeaders {
				for _, leak := range []string{"tok_live_0123456789", "k-123456789", "pa55word"} {
					if strings.Contains(h.Value, leak) {
						t.Fatalf("attempt log shows header %s = %q", h.Name, h.Value)
					}
				}
			}
		})
	}
}
