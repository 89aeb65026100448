package signing

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
)

// SecretPrefix begins every Standard Webhooks secret.
const SecretPrefix = "whsec_"

// secretKeySize is the number of random key bytes in a secret from NewSecret.
const secretKeySize = 32

// NewSecret returns a new secret: SecretPrefix followed by the standard
// base64 encoding of 32 random bytes read from r. If r is nil,
// crypto/rand.Reader is used.
func NewSecret(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var key [secretKeySize]byte
	if _, err := io.ReadFull(r, key[:]); err != nil {
		return "", fmt.Errorf("signing: new secret: reading random bytes: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(key[:]), nil
}

// DecodeSecret returns the key bytes of secret, the standard base64 text
// after SecretPrefix. Like the reference Standard Webhooks libraries, it also
// accepts a secret written without the prefix. Errors say what is wrong with
// the secret but never include it.
func DecodeSecret(secret string) ([]byte, error) {
	enc := strings.TrimPrefix(secret, SecretPrefix)
	if enc == "" {
		return nil, errors.New("signing: secret is empty; expected " + SecretPrefix + " followed by base64 key bytes")
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		// A CorruptInputError reports only a byte offset, not the input.
		return nil, fmt.Errorf("signing: secret is not "+SecretPrefix+" followed by standard base64: %w", err)
	}
	return key, nil
}
