package signing

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Prefixes of Ed25519 keys (Standard Webhooks v1a): a private key is its
// 32-byte seed, a public key its 32 bytes, each in standard base64.
const (
	PrivateKeyPrefix = "whsk_"
	PublicKeyPrefix  = "whpk_"
)

// Key is one key a Signer signs with: an HMAC-SHA256 key (Standard
// Webhooks v1) or an Ed25519 private key (v1a).
type Key struct {
	hmac []byte
	ed   ed25519.PrivateKey
}

// Ed25519 reports whether the key is an Ed25519 private key.
func (k Key) Ed25519() bool { return k.ed != nil }

// ParseKey reads a signing secret (whsec_…, see DecodeSecret) or an
// Ed25519 private key (whsk_…). Errors never include the key.
func ParseKey(s string) (Key, error) {
	if enc, ok := strings.CutPrefix(s, PrivateKeyPrefix); ok {
		seed, err := base64.StdEncoding.DecodeString(enc)
		if err != nil || len(seed) != ed25519.SeedSize {
			return Key{}, errors.New("signing: a " + PrivateKeyPrefix + " private key is a 32-byte seed in standard base64")
		}
		return Key{ed: ed25519.NewKeyFromSeed(seed)}, nil
	}
	b, err := DecodeSecret(s)
	if err != nil {
		return Key{}, err
	}
	return Key{hmac: b}, nil
}

// NewKeyPair returns a new Ed25519 key pair from r (crypto/rand if nil):
// the private key "whsk_<base64 seed>" and the public key "whpk_<base64>".
func NewKeyPair(r io.Reader) (private, public string, err error) {
	if r == nil {
		r = rand.Reader
	}
	var seed [ed25519.SeedSize]byte
	if _, err := io.ReadFull(r, seed[:]); err != nil {
		return "", "", fmt.Errorf("signing: new key pair: reading random bytes: %w", err)
	}
	priv := ed25519.NewKeyFromSeed(seed[:])
	return PrivateKeyPrefix + base64.StdEncoding.EncodeToString(seed[:]),
		PublicKeyPrefix + base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)), nil
}

// PublicKey returns the public key (whpk_…) of an Ed25519 private key
// (whsk_…).
func PublicKey(private string) (string, error) {
	k, err := ParseKey(private)
	if err != nil {
		return "", err
	}
	if k.ed == nil {
		return "", errors.New("signing: not an Ed25519 private key (" + PrivateKeyPrefix + "…)")
	}
	return PublicKeyPrefix + base64.StdEncoding.EncodeToString(k.ed.Public().(ed25519.PublicKey)), nil
}
