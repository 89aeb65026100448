package pgnotify

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxPayload is the longest NOTIFY payload PostgreSQL accepts, in bytes
// (it refuses 8000 or more in its default build).
const MaxPayload = 7999

// MaxMessage is the longest message payload Send accepts, in bytes: what
// fits in one notification with the envelope around it.
const MaxMessage = 7680

// maxReplicaID is the longest replica ID, so that the envelope's header
// always fits next to a message of MaxMessage bytes.
const maxReplicaID = 64

// Message is one message for other replicas.
type Message struct {
	// Channel is the PostgreSQL channel, such as "herald_live".
	Channel string
	// Payload is the message: valid UTF-8 text without NUL bytes, at most
	// MaxMessage bytes.
	Payload string
}

// Errors of Send.
var (
	// ErrTooLarge is returned for a payload longer than MaxMessage.
	ErrTooLarge = errors.New("pgnotify: message payload longer than MaxMessage")
	// ErrInvalid is returned for a payload PostgreSQL would refuse (NUL
	// bytes or invalid UTF-8) or a bad channel name.
	ErrInvalid = errors.New("pgnotify: invalid channel or payload")
	// ErrQueueFull is returned when the sender is so far behind that its
	// queue is full; the message is dropped and listeners are told they
	// missed something.
	ErrQueueFull = errors.New("pgnotify: send queue full")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("pgnotify: sender closed")
)

// check validates a message before it is queued: one bad message must not
// make PostgreSQL refuse the batch it travels in.
func (m *Message) check() error {
	if len(m.Payload) > MaxMessage {
		return ErrTooLarge
	}
	if !validChannel(m.Channel) || strings.IndexByte(m.Payload, 0) >= 0 || !utf8.ValidString(m.Payload) {
		return ErrInvalid
	}
	return nil
}

// validChannel accepts names PostgreSQL keeps as given: at most 63 bytes of
// lower-case letters, digits and underscores, not starting with a digit.
func validChannel(c string) bool {
	if c == "" || len(c) > 63 || (c[0] >= '0' && c[0] <= '9') {
		return false
	}
	for i := 0; i < len(c); i++ {
		b := c[i]
		if (b < 'a' || b > 'z') && (b < '0' || b > '9') && b != '_' {
			return false
		}
	}
	return true
}

func validReplicaID(id string) bool {
	if id == "" || len(id) > maxReplicaID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// An envelope is the payload of one notification: a header line
//
//	1 <replica> <seq>\n
//
// followed by the messages, each as <length in bytes>:<payload>. seq counts
// the notifications one replica sent on one channel from 1 up, so that a
// listener notices one that went missing; 0 means not counted (sent in a
// caller's transaction).
const envelopeVersion = "1"

// appendHeader starts an envelope.
func appendHeader(b []byte, replica string, seq uint64) []byte {
	b = append(b, envelopeVersion...)
	b = append(b, ' ')
	b = append(b, replica...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, seq, 10)
	return append(b, '\n')
}

// frameLen is the length of a message once framed.
func frameLen(payload string) int {
	return len(strconv.Itoa(len(payload))) + 1 + len(payload)
}

func appendFrame(b []byte, payload string) []byte {
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	b = append(b, ':')
	return append(b, payload...)
}

// envelope is a decoded notification payload.
type envelope struct {
	replica  string
	seq      uint64
	messages []string
}

var errMalformed = errors.New("pgnotify: malformed notification payload")

func parseEnvelope(s string) (envelope, error) {
	var e envelope
	header, rest, ok := strings.Cut(s, "\n")
	if !ok {
		return e, errMalformed
	}
	f := strings.Fields(header)
	if len(f) != 3 || f[0] != envelopeVersion {
		return e, errMalformed
	}
	seq, err := strconv.ParseUint(f[2], 10, 64)
	if err != nil {
		return e, errMalformed
	}
	e.replica, e.seq = f[1], seq
	for rest != "" {
		n, tail, ok := strings.Cut(rest, ":")
		if !ok {
			return e, errMalformed
		}
		size, err := strconv.Atoi(n)
		if err != nil || size < 0 || size > len(tail) {
			return e, errMalformed
		}
		e.messages = append(e.messages, tail[:size])
		rest = tail[size:]
	}
	return e, nil
}

// packer turns queued messages into notification payloads under
// MaxPayload, numbering each channel's notifications. One goroutine owns
// it.
type packer struct {
	replica string
	seq     map[string]uint64 // last number per channel
}

// pack groups msgs by channel, in order within each, into payloads of at
// most MaxPayload bytes. skip names channels whose next number is to be
// skipped, so listeners see the gap where messages were dropped. With
// counted false the payloads carry number 0.
func (p *packer) pack(msgs []Message, skip map[string]bool, counted bool) (channels, payloads []string) {
	byChannel := make(map[string][]string)
	var order []string
	for _, m := range msgs {
		if _, ok := byChannel[m.Channel]; !ok {
			order = append(order, m.Channel)
		}
		byChannel[m.Channel] = append(byChannel[m.Channel], m.Payload)
	}
	for c := range skip {
		if _, ok := byChannel[c]; !ok {
			// Nothing to send on it now: the skip waits for the next.
			continue
		}
		p.seq[c]++
		delete(skip, c)
	}
	var buf []byte
	for _, c := range order {
		start := func() {
			var seq uint64
			if counted {
				p.seq[c]++
				seq = p.seq[c]
			}
			buf = appendHeader(buf[:0], p.replica, seq)
		}
		start()
		n := 0
		for _, m := range byChannel[c] {
			if n > 0 && len(buf)+frameLen(m) > MaxPayload {
				channels, payloads = append(channels, c), append(payloads, string(buf))
				start()
				n = 0
			}
			buf = appendFrame(buf, m)
			n++
		}
		channels, payloads = append(channels, c), append(payloads, string(buf))
	}
	return channels, payloads
}
