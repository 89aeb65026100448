// Package signing computes and verifies the signatures Herald attaches to
// webhook deliveries.
//
// The primary scheme is Standard Webhooks (https://www.standardwebhooks.com/):
// the signature is base64(HMAC-SHA256(key, "<msg_id>.<timestamp>.<body>")),
// sent as "webhook-signature: v1,<signature>" next to the webhook-id and
// webhook-timestamp headers, with one signature per key during a key
// rotation. Secrets are written "whsec_<base64 of the key bytes>".
//
// Two simpler schemes serve receivers that expect them: [HMACHex], a
// GitHub-style hex HMAC of the body, and [Timestamped], a Stripe-style
// signature bound to a timestamp.
package signing
