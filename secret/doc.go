// Package secret owns what a secret is in Herald and how it is stored,
// read and shown: endpoint signing secrets and private keys, every
// credential an endpoint authenticates with (tokens, passwords, header
// values, HMAC and OAuth2 client secrets, mTLS private keys), custom headers
// marked secret, and the credential fields of broker destinations.
//
// At rest a secret is sealed with AES-256-GCM under one key of a [Keyring],
// bound by the AEAD's associated data to the row and the field it belongs to
// ("endpoint/ep_…/auth.token"), so that a sealed value copied into another
// row, or into another field of the same row, does not open. A sealed value
// is text:
//
//	hse1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>
//
// The key id says which key of the ring opens it; the first key of a ring
// seals, every key opens, which is how keys rotate: put the new key first,
// re-seal ([Keyring.Reseal] through the endpoints package's Rotate), then
// drop the old one once nothing is sealed under it.
//
// In the API a secret is masked ([Mask]: at most its last four characters
// show) and a masked value sent back keeps the stored one ([Unmask]). In
// logs, attributes that name or carry a secret are redacted
// ([RedactAttr]); in audit records a changed secret is the word
// [Changed], never its value. API keys are not secrets in this sense:
// Herald stores only their hashes (package auth).
package secret
