package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// KeySize is the size of an encryption key: 32 bytes, for AES-256.
const KeySize = 32

// prefix begins every sealed value; the digit is the format's version.
const prefix = "hse1:"

// Key is one encryption key and the id sealed values name it by.
type Key struct {
	// ID names the key in sealed values and messages: 1-32 letters,
	// digits, '-' and '_'.
	ID string
	// Bytes are the KeySize key bytes.
	Bytes []byte
}

var keyIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Keyring seals with its first key and opens with any of its keys. It is
// safe for concurrent use.
type Keyring struct {
	keys []ringKey
}

type ringKey struct {
	id   string
	aead cipher.AEAD
}

// NewKeyring returns a ring of keys, the first of which seals. Ids must be
// distinct and keys KeySize bytes long.
func NewKeyring(keys ...Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("secret: no encryption key")
	}
	r := &Keyring{keys: make([]ringKey, 0, len(keys))}
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if !keyIDRE.MatchString(k.ID) {
			return nil, fmt.Errorf("secret: key id %q: use 1-32 letters, digits, '-' or '_'", k.ID)
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("secret: key id %q is given twice", k.ID)
		}
		seen[k.ID] = true
		if len(k.Bytes) != KeySize {
			return nil, fmt.Errorf("secret: key %s is %d bytes; an encryption key is %d random bytes (base64 or hex)", k.ID, len(k.Bytes), KeySize)
		}
		block, err := aes.NewCipher(k.Bytes)
		if err != nil {
			return nil, fmt.Errorf("secret: key %s: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("secret: key %s: %w", k.ID, err)
		}
		r.keys = append(r.keys, ringKey{id: k.ID, aead: aead})
	}
	return r, nil
}

// Primary returns the id of the key that seals.
func (r *Keyring) Primary() string { return r.keys[0].id }

// IDs returns the ids of the ring's keys, the primary first.
func (r *Keyring) IDs() []string {
	out := make([]string, len(r.keys))
	for i, k := range r.keys {
		out[i] = k.id
	}
	return out
}

// Has reports whether the ring holds a key of this id.
func (r *Keyring) Has(id string) bool { return r.key(id) != nil }

func (r *Keyring) key(id string) *ringKey {
	for i := range r.keys {
		if r.keys[i].id == id {
			return &r.keys[i]
		}
	}
	return nil
}

// Seal encrypts plain under the primary key, bound to ad (the identity of
// the row and field it is stored in). The empty string stays empty: there
// is nothing to hide in it, and it keeps "no value" recognisable.
func (r *Keyring) Seal(plain, ad string) string {
	if plain == "" {
		return ""
	}
	k := &r.keys[0]
	n := k.aead.NonceSize()
	buf := make([]byte, n, n+len(plain)+k.aead.Overhead())
	if _, err := io.ReadFull(rand.Reader, buf); err != nil {
		// crypto/rand does not fail on supported platforms.
		panic(fmt.Sprintf("secret: reading random bytes: %v", err))
	}
	buf = k.aead.Seal(buf, buf[:n], []byte(plain), []byte(ad))
	out := make([]byte, 0, len(prefix)+len(k.id)+1+base64.RawURLEncoding.EncodedLen(len(buf)))
	out = append(out, prefix...)
	out = append(out, k.id...)
	out = append(out, ':')
	return string(base64.RawURLEncoding.AppendEncode(out, buf))
}

// Open decrypts a value Seal returned for the same ad. A value that is not
// sealed (stored before Herald encrypted secrets) is returned as it is.
// Errors are a *MissingKeyError when the ring lacks the value's key, and a
// *WrongKeyError when the key of that id does not open it (another key
// with the same id, or a value moved from another row or field); neither
// includes the value.
func (r *Keyring) Open(sealed, ad string) (string, error) {
	if !IsSealed(sealed) {
		return sealed, nil
	}
	id, body, ok := strings.Cut(sealed[len(prefix):], ":")
	if !ok {
		return "", errors.New("secret: malformed sealed value (no key id)")
	}
	k := r.key(id)
	if k == nil {
		return "", &MissingKeyError{ID: id, Have: r.IDs()}
	}
	buf, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || len(buf) < k.aead.NonceSize()+k.aead.Overhead() {
		return "", errors.New("secret: malformed sealed value (not base64url, or too short)")
	}
	n := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, buf[:n], buf[n:], []byte(ad))
	if err != nil {
		return "", &WrongKeyError{ID: id, AD: ad}
	}
	return string(plain), nil
}

// IsSealed reports whether a stored value is sealed (rather than a
// plaintext value stored before encryption, or empty).
func IsSealed(s string) bool { return strings.HasPrefix(s, prefix) }

// KeyOf returns the id of the key a sealed value is sealed under ("" if it
// is not sealed).
func KeyOf(s string) string {
	if !IsSealed(s) {
		return ""
	}
	id, _, _ := strings.Cut(s[len(prefix):], ":")
	return id
}

// MissingKeyError reports a value sealed under a key the ring does not
// hold.
type MissingKeyError struct {
	// ID is the key the value needs.
	ID string
	// Have are the ids of the ring's keys.
	Have []string
}

func (e *MissingKeyError) Error() string {
	return fmt.Sprintf("secrets are encrypted with key %q, which is not among the configured keys (%s): "+
		"add key %q to HERALD_ENCRYPTION_KEYS or --encryption-key-file", e.ID, strings.Join(e.Have, ", "), e.ID)
}

// WrongKeyError reports a value the key of its id does not open.
type WrongKeyError struct {
	// ID is the key that was tried.
	ID string
	// AD is what the value was to be bound to ("endpoint/ep_…/secret").
	AD string
}

func (e *WrongKeyError) Error() string {
	return fmt.Sprintf("key %q does not decrypt %s: it is not the key %q the value was encrypted with "+
		"(or the value was moved from another row)", e.ID, e.AD, e.ID)
}

// GenerateKey returns a new random key whose id is made of the date and
// random hex digits ("k20261201-3fa9").
func GenerateKey(now time.Time) (Key, error) {
	var b [KeySize + 2]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		return Key{}, fmt.Errorf("secret: generate key: %w", err)
	}
	return Key{ID: "k" + now.UTC().Format("20060102") + "-" + hex.EncodeToString(b[KeySize:]), Bytes: b[:KeySize]}, nil
}

// Encode returns the key as ParseKeys reads it: "<id>:<base64 bytes>".
func (k Key) Encode() string { return k.ID + ":" + base64.StdEncoding.EncodeToString(k.Bytes) }

// String returns the key's id only, so that printing or logging a Key
// never shows its bytes.
func (k Key) String() string { return k.ID + ":[redacted]" }
