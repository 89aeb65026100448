// Package webhook verifies the deliveries a Herald server sends, for
// receivers written in Go.
//
// Herald signs every delivery the Standard Webhooks way
// (https://www.standardwebhooks.com/): a webhook-id, a webhook-timestamp
// and a webhook-signature header, the signature computed over
// "<id>.<timestamp>.<body>". A Verifier checks them with an endpoint's
// signing secret (whsec_…, an HMAC-SHA256 key: signatures "v1,…") or an
// Ed25519 public key (whpk_…: signatures "v1a,…"), and refuses timestamps
// too far from now, which stops replays of old deliveries:
//
//	v, err := webhook.NewVerifier(os.Getenv("WEBHOOK_SECRET"))
//	…
//	http.HandleFunc("/webhooks", func(w http.ResponseWriter, r *http.Request) {
//		msg, err := v.VerifyRequest(r)
//		if err != nil {
//			http.Error(w, err.Error(), http.StatusUnauthorized)
//			return
//		}
//		// msg.Type, msg.Data …; msg.ID deduplicates retries.
//	})
//
// During a secret rotation, give the Verifier both secrets: a delivery
// passes if any of its signatures matches any of them.
package webhook

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Names of the Standard Webhooks headers.
const (
	HeaderID        = "Webhook-Id"
	HeaderTimestamp = "Webhook-Timestamp"
	HeaderSignature = "Webhook-Signature"
)

// Prefixes of the secrets a Verifier takes.
const (
	// PrefixSecret starts an HMAC-SHA256 secret: whsec_<base64 key>.
	PrefixSecret = "whsec_"
	// PrefixPublicKey starts an Ed25519 public key: whpk_<base64 32 bytes>.
	PrefixPublicKey = "whpk_"
	// PrefixPrivateKey starts an Ed25519 private key (its 32-byte seed):
	// whsk_<base64>. Only Sign takes one.
	PrefixPrivateKey = "whsk_"
)

// DefaultTolerance is how far a delivery's timestamp may be from now.
const DefaultTolerance = 5 * time.Minute

// DefaultMaxBodyBytes is the largest body VerifyRequest reads.
const DefaultMaxBodyBytes = 1 << 20

// Errors of verification, possibly wrapped with detail: test with
// errors.Is.
var (
	// ErrMissingHeaders: a Standard Webhooks header is missing.
	ErrMissingHeaders = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature")
	// ErrTimestamp: webhook-timestamp is not Unix seconds, or is further
	// from now than the tolerance (an old delivery replayed, or a clock
	// off).
	ErrTimestamp = errors.New("webhook: timestamp outside the tolerance")
	// ErrSignature: no signature matches any of the verifier's keys.
	ErrSignature = errors.New("webhook: no matching signature")
	// ErrBodyTooLarge: the request body is larger than MaxBodyBytes.
	ErrBodyTooLarge = errors.New("webhook: body too large")
)

// Verifier checks deliveries against one or more keys. Its fields may be
// changed before first use; it is safe for concurrent use after that.
type Verifier struct {
	// Tolerance is how far a timestamp may be from now (default
	// DefaultTolerance). Negative: timestamps are not checked.
	Tolerance time.Duration
	// MaxBodyBytes bounds what VerifyRequest reads (default
	// DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Now returns the current time (default time.Now).
	Now func() time.Time

	hmacKeys [][]byte
	edKeys   []ed25519.PublicKey
}

// NewVerifier returns a verifier for the keys: signing secrets (whsec_…)
// and Ed25519 public keys (whpk_…). A secret without a prefix is taken as
// a base64 HMAC key.
func NewVerifier(keys ...string) (*Verifier, error) {
	if len(keys) == 0 {
		return nil, errors.New("webhook: no secret or public key")
	}
	v := &Verifier{}
	for i, k := range keys {
		k = strings.TrimSpace(k)
		switch {
		case strings.HasPrefix(k, PrefixPublicKey):
			b, err := decode(k[len(PrefixPublicKey):])
			if err != nil || len(b) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("webhook: key %d: a whpk_ public key is 32 bytes in base64", i+1)
			}
			v.edKeys = append(v.edKeys, ed25519.PublicKey(b))
		case strings.HasPrefix(k, PrefixPrivateKey):
			return nil, fmt.Errorf("webhook: key %d is a private key (whsk_): verify with its public key (whpk_)", i+1)
		default:
			b, err := decode(strings.TrimPrefix(k, PrefixSecret))
			if err != nil || len(b) == 0 {
				return nil, fmt.Errorf("webhook: key %d: a signing secret is whsec_ and base64", i+1)
			}
			v.hmacKeys = append(v.hmacKeys, b)
		}
	}
	return v, nil
}

func decode(s string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// Verify checks a delivery given its headers and raw body: the body as
// received, byte for byte (not re-encoded JSON).
func (v *Verifier) Verify(h http.Header, body []byte) error {
	id, ts, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Values(HeaderSignature)
	if id == "" || ts == "" || strings.TrimSpace(strings.Join(sigs, "")) == "" {
		return ErrMissingHeaders
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q is not Unix seconds", ErrTimestamp, ts)
	}
	if tol := v.tolerance(); tol >= 0 {
		now := time.Now
		if v.Now != nil {
			now = v.Now
		}
		n := now().Unix()
		limit := int64(tol / time.Second)
		if unix < n-limit || unix > n+limit {
			return fmt.Errorf("%w: timestamp %d is %ds from now, tolerance %s", ErrTimestamp, unix, unix-n, tol)
		}
	}
	signed := make([]byte, 0, len(id)+len(ts)+len(body)+2)
	signed = append(append(append(append(append(signed, id...), '.'), ts...), '.'), body...)
	var macs [][]byte
	for _, k := range v.hmacKeys {
		m := hmac.New(sha256.New, k)
		m.Write(signed)
		macs = append(macs, m.Sum(nil))
	}
	for _, field := range sigs {
		for _, s := range strings.Fields(field) {
			version, enc, ok := strings.Cut(s, ",")
			if !ok {
				continue
			}
			sig, err := base64.StdEncoding.DecodeString(enc)
			if err != nil {
				continue
			}
			switch version {
			case "v1":
				for _, m := range macs {
					if hmac.Equal(sig, m) {
						return nil
					}
				}
			case "v1a":
				for _, k := range v.edKeys {
					if ed25519.Verify(k, signed, sig) {
						return nil
					}
				}
			}
		}
	}
	return ErrSignature
}

func (v *Verifier) tolerance() time.Duration {
	if v.Tolerance == 0 {
		return DefaultTolerance
	}
	return v.Tolerance
}

// Message is a delivery's body: Herald's envelope of an event.
type Message struct {
	// ID is the event's ID, also in webhook-id: the same on every retry,
	// so receivers deduplicate with it.
	ID   string `json:"id"`
	Type string `json:"type"`
	// Timestamp is when the event was published.
	Timestamp time.Time `json:"timestamp"`
	// Data is the payload as published.
	Data json.RawMessage `json:"data"`
	// Body is the raw request body.
	Body []byte `json:"-"`
}

// VerifyRequest reads a request's body (at most MaxBodyBytes), verifies it
// and returns the message. The body stays readable from r.Body.
func (v *Verifier) VerifyRequest(r *http.Request) (*Message, error) {
	limit := v.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("webhook: read body: %w", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, limit)
	}
	if err := v.Verify(r.Header, body); err != nil {
		return nil, err
	}
	m := &Message{Body: body}
	if err := json.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("webhook: the signed body is not Herald's JSON envelope: %w", err)
	}
	return m, nil
}

// Verify checks a delivery with one key and the default tolerance.
func Verify(key string, h http.Header, body []byte) error {
	v, err := NewVerifier(key)
	if err != nil {
		return err
	}
	return v.Verify(h, body)
}

// Sign returns the webhook-signature value of a message signed with key:
// a signing secret (whsec_…: "v1,…") or an Ed25519 private key (whsk_…:
// "v1a,…"). Receivers use it to test their handlers.
func Sign(key, id string, timestamp time.Time, body []byte) (string, error) {
	signed := fmt.Appendf(nil, "%s.%d.", id, timestamp.Unix())
	signed = append(signed, body...)
	if strings.HasPrefix(key, PrefixPrivateKey) {
		seed, err := decode(key[len(PrefixPrivateKey):])
		if err != nil || len(seed) != ed25519.SeedSize {
			return "", errors.New("webhook: a whsk_ private key is a 32-byte seed in base64")
		}
		return "v1a," + base64.StdEncoding.EncodeToString(ed25519.Sign(ed25519.NewKeyFromSeed(seed), signed)), nil
	}
	k, err := decode(strings.TrimPrefix(key, PrefixSecret))
	if err != nil || len(k) == 0 {
		return "", errors.New("webhook: a signing secret is whsec_ and base64")
	}
	m := hmac.New(sha256.New, k)
	m.Write(signed)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
}
