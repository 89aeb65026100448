// Package ids generates Herald's public identifiers.
//
// An identifier is a short type prefix, an underscore and a 26-character
// ULID-style body (48 bits of millisecond time followed by 80 random bits, in
// Crockford base32), for example "ep_01JDZ6Q4W8X3M5N7P9R2T4V6X8". Identifiers
// sort by creation time, are safe to show in URLs and logs, and say what they
// name, so a global GraphQL node ID needs no extra encoding.
package ids

import (
	"crypto/rand"
	"encoding/binary"
	"strings"
	"time"
)

// Prefixes of every kind of identifier Herald issues.
const (
	App       = "app"
	APIKey    = "key"
	Endpoint  = "ep"
	EventType = "et"
	Event     = "evt"
	Delivery  = "dlv"
	Attempt   = "att"
)

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// New returns a new identifier with the given prefix, stamped with the current
// time.
func New(prefix string) string {
	return NewAt(prefix, time.Now())
}

// NewAt returns a new identifier with the given prefix, stamped with t.
func NewAt(prefix string, t time.Time) string {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint64(b[:8], ms<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		// crypto/rand.Read never fails on supported platforms (Go 1.24+).
		panic("ids: read random bytes: " + err.Error())
	}
	out := make([]byte, 0, len(prefix)+1+26)
	out = append(out, prefix...)
	out = append(out, '_')
	return string(appendBase32(out, b))
}

// appendBase32 encodes the 128-bit value in b as 26 Crockford base32
// characters (the first character carries the top 3 bits).
func appendBase32(dst []byte, b [16]byte) []byte {
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	var buf [26]byte
	for i := 25; i >= 0; i-- {
		buf[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return append(dst, buf[:]...)
}

// Prefix returns the type prefix of id ("ep" for "ep_01J..."), or "" if id
// has no prefix.
func Prefix(id string) string {
	i := strings.IndexByte(id, '_')
	if i <= 0 {
		return ""
	}
	return id[:i]
}

// Valid reports whether id has the given prefix and a well-formed body.
func Valid(prefix, id string) bool {
	if len(id) != len(prefix)+1+26 || !strings.HasPrefix(id, prefix) || id[len(prefix)] != '_' {
		return false
	}
	for _, c := range []byte(id[len(prefix)+1:]) {
		if strings.IndexByte(crockford, c) < 0 {
			return false
		}
	}
	return true
}
