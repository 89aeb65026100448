package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// HMACHex returns "sha256=<hex HMAC-SHA256(secret, body)>", the GitHub-style
// signature header value. The secret is an arbitrary string chosen by the
// user and is used as raw bytes, not decoded.
func HMACHex(secret string, body []byte) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write(body)
	var sum [sha256.Size]byte
	return string(hex.AppendEncode([]byte("sha256="), h.Sum(sum[:0])))
}

// Timestamped returns "t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
// "<unix seconds>.<body>")>", the Stripe-style signature header value, which
// binds the signature to the time t. The secret is used as raw bytes.
func Timestamped(secret string, t time.Time, body []byte) string {
	unix := strconv.AppendInt(nil, t.Unix(), 10)
	h := hmac.New(sha256.New, []byte(secret))
	h.Write(unix)
	h.Write([]byte{'.'})
	h.Write(body)
	var sum [sha256.Size]byte
	out := make([]byte, 0, len("t=,v1=")+len(unix)+hex.EncodedLen(sha256.Size))
	out = append(out, "t="...)
	out = append(out, unix...)
	out = append(out, ",v1="...)
	return string(hex.AppendEncode(out, h.Sum(sum[:0])))
}
