package signing

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// The tests in this file check Signer against the Go library of the Standard
// Webhooks project, an implementation written independently of Herald's.

func TestSigner_MatchesGoReferenceSignature(t *testing.T) {
	wh, err := standardwebhooks.NewWebhook(specSecret)
	if err != nil {
		t.Fatalf("reference NewWebhook: %v", err)
	}
	s := NewSigner(mustDecode(t, specSecret))
	for _, body := range []string{specBody, "", "not json \x00\xff bytes", string(make([]byte, 5000))} {
		want, err := wh.Sign(specMsgID, time.Unix(specTimestamp, 0), []byte(body))
		if err != nil {
			t.Fatalf("reference Sign: %v", err)
		}
		if got := string(s.AppendStandard(nil, specMsgID, specTimestamp, []byte(body))); got != want {
			t.Errorf("body %q: AppendStandard = %q, reference signs %q", body, got, want)
		}
	}
}

func TestSigner_AcceptedByGoReferenceVerifier(t *testing.T) {
	cur, prev := mustSecret(t), mustSecret(t)
	s := NewSigner(mustDecode(t, cur), mustDecode(t, prev))
	// The reference verifier checks the timestamp against the real clock.
	now := time.Now().Unix()
	body := []byte(`{"type":"invoice.paid","data":{"id":"in_1"}}`)

	tests := []struct {
		name   string
		secret string
		tamper func(h http.Header) []byte
		accept bool
	}{
		{"current key", cur, func(http.Header) []byte { return body }, true},
		{"previous key", prev, func(http.Header) []byte { return body }, true},
		{"unrelated key", specSecret, func(http.Header) []byte { return body }, false},
		{"tampered body", cur, func(http.Header) []byte { return []byte(`{"type":"invoice.paid","data":{"id":"in_2"}}`) }, false},
		{"tampered id", cur, func(h http.Header) []byte { h.Set(headerID, "msg_other"); return body }, false},
		{"tampered timestamp", cur, func(h http.Header) []byte {
			h.Set(headerTimestamp, strconv.FormatInt(now-1, 10))
			return body
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wh, err := standardwebhooks.NewWebhook(tt.secret)
			if err != nil {
				t.Fatalf("reference NewWebhook: %v", err)
			}
			h := headers(s, "msg_2fK8Xb", now, body)
			b := tt.tamper(h)
			err = wh.Verify(b, h)
			if tt.accept && err != nil {
				t.Errorf("reference verifier rejected a valid signature: %v", err)
			}
			if !tt.accept && err == nil {
				t.Error("reference verifier accepted a signature that must not match")
			}
		})
	}
}
