package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Names of the Standard Webhooks headers.
const (
	headerID        = "webhook-id"
	headerTimestamp = "webhook-timestamp"
	headerSignature = "webhook-signature"
)

// Errors returned by Verify, possibly wrapped with detail; test for them with
// errors.Is.
var (
	// ErrMissingHeaders means the webhook-id, webhook-timestamp or
	// webhook-signature header is missing or empty.
	ErrMissingHeaders = errors.New("signing: missing Standard Webhooks headers")
	// ErrInvalidTimestamp means webhook-timestamp is not an integer number
	// of Unix seconds.
	ErrInvalidTimestamp = errors.New("signing: webhook-timestamp is not Unix seconds")
	// ErrTimestampOutOfRange means webhook-timestamp is further from the
	// current time than the tolerance allows.
	ErrTimestampOutOfRange = errors.New("signing: webhook-timestamp is outside the tolerance")
	// ErrNoMatchingSignature means no v1 signature in webhook-signature
	// matches the message and secret.
	ErrNoMatchingSignature = errors.New("signing: no matching signature")
)

// Verify checks the Standard Webhooks headers of a request, h, and its body
// against secret (see DecodeSecret). It returns nil if webhook-timestamp is
// within tolerance of now (inclusive) and any v1 signature in
// webhook-signature matches, compared in constant time. Otherwise it returns
// an error wrapping ErrMissingHeaders, ErrInvalidTimestamp,
// ErrTimestampOutOfRange or ErrNoMatchingSignature, or the error of decoding
// the secret.
//
// Signatures may be spread over several webhook-signature header values as
// well as separated by spaces within one.
func Verify(secret string, h http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	key, err := DecodeSecret(secret)
	if err != nil {
		return fmt.Errorf("signing: verify: %w", err)
	}

	msgID := h.Get(headerID)
	ts := h.Get(headerTimestamp)
	sigs := h.Values(headerSignature)
	var missing []string
	if msgID == "" {
		missing = append(missing, headerID)
	}
	if ts == "" {
		missing = append(missing, headerTimestamp)
	}
	if strings.TrimSpace(strings.Join(sigs, "")) == "" {
		missing = append(missing, headerSignature)
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrMissingHeaders, strings.Join(missing, ", "))
	}

	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrInvalidTimestamp, ts)
	}
	if !withinTolerance(unix, tolerance, now) {
		return fmt.Errorf("%w: timestamp %d, now %d, tolerance %v", ErrTimestampOutOfRange, unix, now.Unix(), tolerance)
	}

	mac := hmac.New(sha256.New, key)
	mac.Write(standardPrefix(nil, msgID, unix))
	mac.Write(body)
	var sum [sha256.Size]byte
	want := base64.StdEncoding.AppendEncode(nil, mac.Sum(sum[:0]))

	for _, v := range sigs {
		for _, vs := range strings.Fields(v) {
			version, sig, ok := strings.Cut(vs, ",")
			if !ok || version != "v1" {
				continue
			}
			if hmac.Equal([]byte(sig), want) {
				return nil
			}
		}
	}
	return ErrNoMatchingSignature
}

// withinTolerance reports whether the Unix time unix is at most tolerance
// away from now.
func withinTolerance(unix int64, tolerance time.Duration, now time.Time) bool {
	// Compare whole seconds first, so that an absurd timestamp cannot
	// overflow time.Time; a Duration spans less than 300 years, so these
	// bounds cannot overflow for any plausible now.
	limit := int64(tolerance/time.Second) + 1
	if n := now.Unix(); unix > n+limit || unix < n-limit {
		return false
	}
	d := now.Sub(time.Unix(unix, 0))
	return -tolerance <= d && d <= tolerance
}
