package signing

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"strconv"
	"sync"
)

// maxPooledScratch bounds the scratch buffer kept in a pooled MAC, so that one
// message with an unusually long ID does not pin a large buffer.
const maxPooledScratch = 1 << 10

// A Signer signs messages with one or more keys: the current key first,
// then, while a rotation overlaps, the previous one. Receivers accept a
// message if any of its signatures matches a key they hold.
//
// A Signer is meant to be built once per endpoint and reused for every
// message sent to it. It is safe for concurrent use. It keeps keyed HMAC
// state between calls, so signing does not rederive the key pads or
// allocate.
type Signer struct {
	keys []*pooledKey
}

// pooledKey holds reusable HMAC-SHA256 states for one key, or an Ed25519
// private key and reusable buffers for the content it signs.
type pooledKey struct {
	pool sync.Pool // of *mac
	ed   ed25519.PrivateKey
}

// mac is an HMAC-SHA256 state for one key and a scratch buffer for the
// bytes written before the body and for the sum.
type mac struct {
	h       hash.Hash
	scratch []byte
}

// NewSigner returns a Signer for keys, the raw key bytes (see DecodeSecret),
// current key first. The keys are copied. A Signer without keys signs with
// nothing: its Append methods append nothing.
func NewSigner(keys ...[]byte) *Signer {
	ks := make([]Key, len(keys))
	for i, k := range keys {
		ks[i] = Key{hmac: k}
	}
	return NewSignerKeys(ks...)
}

// NewSignerKeys returns a Signer for keys of either scheme, current key
// first (see ParseKey).
func NewSignerKeys(keys ...Key) *Signer {
	s := &Signer{keys: make([]*pooledKey, len(keys))}
	for i, k := range keys {
		pk := &pooledKey{}
		if k.ed != nil {
			pk.ed = k.ed
			pk.pool.New = func() any { return &mac{scratch: make([]byte, 0, 256)} }
		} else {
			k := append([]byte(nil), k.hmac...)
			pk.pool.New = func() any {
				return &mac{h: hmac.New(sha256.New, k), scratch: make([]byte, 0, 64)}
			}
		}
		s.keys[i] = pk
	}
	return s
}

// get returns a reset MAC for the key.
func (k *pooledKey) get() *mac {
	m := k.pool.Get().(*mac)
	if m.h != nil {
		m.h.Reset()
	}
	return m
}

// put returns m to the pool.
func (k *pooledKey) put(m *mac) {
	if cap(m.scratch) > maxPooledScratch {
		m.scratch = make([]byte, 0, 64)
	}
	k.pool.Put(m)
}

// AppendStandard appends to dst the value of the Standard Webhooks
// webhook-signature header for the message msgID sent at timestamp (Unix
// seconds) with body: "v1,<base64 signature>" for each key, separated by
// spaces, and returns the extended buffer.
func (s *Signer) AppendStandard(dst []byte, msgID string, timestamp int64, body []byte) []byte {
	for i, k := range s.keys {
		if i > 0 {
			dst = append(dst, ' ')
		}
		m := k.get()
		if k.ed != nil {
			// Ed25519 signs the whole content at once (it hashes it
			// twice): the pooled buffer holds it.
			m.scratch = append(standardPrefix(m.scratch[:0], msgID, timestamp), body...)
			dst = append(dst, "v1a,"...)
			dst = base64.StdEncoding.AppendEncode(dst, ed25519.Sign(k.ed, m.scratch))
		} else {
			sum := m.standard(msgID, timestamp, body)
			dst = append(dst, "v1,"...)
			dst = base64.StdEncoding.AppendEncode(dst, sum)
		}
		k.put(m)
	}
	return dst
}

// AppendBodyHex appends to dst the value of Herald's X-Herald-Signature
// header for body: "sha256=<hex HMAC-SHA256(key, body)>" for each HMAC
// key, separated by spaces (Ed25519 keys have no such form), and returns
// the extended buffer.
func (s *Signer) AppendBodyHex(dst []byte, body []byte) []byte {
	n := 0
	for _, k := range s.keys {
		if k.ed != nil {
			continue
		}
		if n > 0 {
			dst = append(dst, ' ')
		}
		n++
		m := k.get()
		m.h.Write(body)
		m.scratch = m.h.Sum(m.scratch[:0])
		dst = append(dst, "sha256="...)
		dst = hex.AppendEncode(dst, m.scratch)
		k.put(m)
	}
	return dst
}

// standard writes the Standard Webhooks signed content for the message to
// the freshly reset m and returns the raw HMAC, which aliases m.scratch.
func (m *mac) standard(msgID string, timestamp int64, body []byte) []byte {
	m.scratch = standardPrefix(m.scratch[:0], msgID, timestamp)
	m.h.Write(m.scratch)
	m.h.Write(body)
	m.scratch = m.h.Sum(m.scratch[:0])
	return m.scratch
}

// standardPrefix appends "<msgID>.<timestamp>." to dst: the signed content
// that precedes the body.
func standardPrefix(dst []byte, msgID string, timestamp int64) []byte {
	dst = append(dst, msgID...)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, timestamp, 10)
	return append(dst, '.')
}
