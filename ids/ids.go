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
	"sync"
	"time"
)

// Prefixes of every kind of identifier Herald issues.
const (
	App       = "app"
	APIKey    = "key"
	Catalog   = "cat"
	Endpoint  = "ep"
	EventType = "et"
	Event     = "evt"
	Delivery  = "dlv"
	Attempt   = "att"
	// AuditRecord names a record of the audit log.
	AuditRecord = "aud"
)

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// New returns a new identifier with the given prefix, stamped with the current
// time.
func New(prefix string) string {
	return NewAt(prefix, time.Now())
}

// NewAt returns a new identifier with the given prefix, stamped with t.
// Identifiers made one after the other within a process sort in the order
// they were made, even within one millisecond, as long as no identifier
// stamped later is made meanwhile: the random part of the next one is the
// previous one's plus one, as in ULID's monotonic mode. Once one stamped
// with a later millisecond has been made, in any goroutine, those stamped
// earlier are random within their millisecond. Identifiers that must sort
// in the order they are made come from a Sequence.
func NewAt(prefix string, t time.Time) string {
	return encode(prefix, monotonic.next(uint64(t.UnixMilli())))
}

// A Sequence makes identifiers stamped with one time that sort in the
// order it makes them, whatever other identifiers the process makes
// meanwhile. Ordered delivery relies on it: the events and deliveries of
// one publishing commit are stamped with one time and sort by ID in the
// order of their events. A Sequence is not safe for concurrent use.
type Sequence struct {
	ms      uint64
	hi      uint16 // top 16 of the 80 bits after the time
	lo      uint64 // low 64 of the 80 bits
	started bool
}

// NewSequence returns a Sequence of identifiers stamped with t.
func NewSequence(t time.Time) *Sequence {
	return &Sequence{ms: uint64(t.UnixMilli())}
}

// Next returns the sequence's next identifier, with the given prefix.
func (s *Sequence) Next(prefix string) string {
	return encode(prefix, s.next())
}

// AppendNext appends the sequence's next identifier, with the given
// prefix, to dst: Next without making a string.
func (s *Sequence) AppendNext(dst []byte, prefix string) []byte {
	dst = append(dst, prefix...)
	dst = append(dst, '_')
	return appendBase32(dst, s.next())
}

// Skip advances the sequence past n identifiers without making them: the
// identifier Next returns after it is the one it would return after n
// calls. A copy of the sequence taken before makes the skipped ones.
func (s *Sequence) Skip(n int) {
	if n <= 0 {
		return
	}
	if !s.started {
		s.next()
		n--
	}
	lo := s.lo + uint64(n)
	if lo < s.lo {
		s.hi++
	}
	s.lo = lo
}

// next returns the sequence's next body: the first is random within the
// millisecond, like any other identifier's, and each after it is the one
// before plus one.
func (s *Sequence) next() [16]byte {
	if !s.started {
		var r [10]byte
		random(r[:])
		// The top bit stays clear, so that the increments cannot
		// overflow into the next millisecond.
		s.hi, s.lo, s.started = binary.BigEndian.Uint16(r[:2])&0x7fff, binary.BigEndian.Uint64(r[2:]), true
		return body(s.ms, s.hi, s.lo)
	}
	s.lo++
	if s.lo == 0 {
		s.hi++
	}
	return body(s.ms, s.hi, s.lo)
}

// encode returns the identifier with the given prefix and body.
func encode(prefix string, b [16]byte) string {
	out := make([]byte, 0, len(prefix)+1+26)
	out = append(out, prefix...)
	out = append(out, '_')
	return string(appendBase32(out, b))
}

// monotonic is the process's generator of identifier bodies.
var monotonic generator

// generator makes 128-bit bodies: 48 bits of milliseconds and 80 bits that
// are random for the first body of a millisecond and incremented for the
// ones that follow it, a Sequence per millisecond.
type generator struct {
	mu  sync.Mutex
	seq Sequence // of the latest millisecond made
}

func (g *generator) next(ms uint64) [16]byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.seq.started && ms == g.seq.ms:
		return g.seq.next()
	case g.seq.started && ms < g.seq.ms:
		// A time before the last one made (an attempt stamped with when
		// it started): random, as it cannot sort among bodies already
		// made anyway.
		return (&Sequence{ms: ms}).next()
	}
	g.seq = Sequence{ms: ms}
	return g.seq.next()
}

func body(ms uint64, hi uint16, lo uint64) [16]byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], ms<<16|uint64(hi))
	binary.BigEndian.PutUint64(b[8:], lo)
	return b
}

func random(b []byte) {
	if _, err := rand.Read(b); err != nil {
		// crypto/rand.Read never fails on supported platforms (Go 1.24+).
		panic("ids: read random bytes: " + err.Error())
	}
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

// Add returns the identifier n after id in the Sequence that made id: the
// one that sequence's Next returned n calls after returning id. ok is false
// if id is not a well-formed identifier. Parts of a fan-out store their
// deliveries' IDs as the first and each one's place after it.
func Add(id string, n uint64) (_ string, ok bool) {
	i := strings.IndexByte(id, '_')
	if i <= 0 || len(id) != i+1+26 || id[i+1] > '7' {
		return "", false
	}
	var hi, lo uint64
	for _, c := range []byte(id[i+1:]) {
		v := strings.IndexByte(crockford, c)
		if v < 0 {
			return "", false
		}
		hi = hi<<5 | lo>>59
		lo = lo<<5 | uint64(v)
	}
	// The 80 bits after the time count up, as Sequence.next counts.
	sum := lo + n
	if sum < lo {
		hi++
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], sum)
	return encode(id[:i], b), true
}
