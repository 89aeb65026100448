// Package bus fans live updates out to subscribers: the dispatch engine
// publishes every delivery, endpoint and event change, and GraphQL
// subscriptions receive the ones that match their filter.
//
// Publishing never blocks. Each subscription has a bounded buffer; one that
// falls further behind than its buffer is cut off (its Done channel closes
// and Err reports ErrLagged) instead of slowing the publisher or growing
// without bound.
//
// A Bus is local to one process. For several replicas, a Relay carries
// messages between them: Publish hands each local message to the relay, and
// messages arriving from other replicas are fed to Deliver. Package relay
// implements one over PostgreSQL's LISTEN/NOTIFY.
package bus

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/heraldhq/herald/webhook"
)

// Topic is the kind of a message.
type Topic uint8

// Topics.
const (
	Deliveries Topic = iota + 1
	Endpoints
	Events
)

// Message is one live update.
type Message struct {
	Topic      Topic
	AppID      string
	EndpointID string // Deliveries, Endpoints
	EventType  string // Deliveries, Events
	Status     string // Deliveries
	// Payload is the update itself; its type depends on the topic and is
	// agreed between publisher and subscriber.
	Payload any
}

// Filter selects messages. Empty fields match everything.
type Filter struct {
	Topic Topic
	// AppID is required: subscribers only ever see their own app.
	AppID      string
	EndpointID string
	// EventType is an event type name or pattern ("order.*", "*").
	EventType string
	Status    string
	// Coalesce suits subscribers that only need to know that something
	// changed: when their buffer is full a message is dropped, and the
	// subscription goes on instead of ending with ErrLagged.
	Coalesce bool
}

func (f *Filter) match(m *Message) bool {
	return f.Topic == m.Topic && f.AppID == m.AppID &&
		(f.EndpointID == "" || f.EndpointID == m.EndpointID) &&
		(f.Status == "" || f.Status == m.Status) &&
		(f.EventType == "" || webhook.Match(f.EventType, m.EventType))
}

// Errors of subscriptions.
var (
	// ErrLagged ends a subscription whose buffer overflowed.
	ErrLagged = errors.New("bus: subscriber fell too far behind and was disconnected")
	// ErrClosed ends subscriptions when the bus closes.
	ErrClosed = errors.New("bus: closed")
)

// Relay carries messages to other processes.
type Relay interface {
	// Send hands a locally published message to the other replicas. It
	// must not block.
	Send(Message)
	// Wanted reports whether another replica has subscribers, so that
	// messages are worth sending. It must be cheap.
	Wanted() bool
	// Subscribers tells the relay that this bus's subscriptions went from
	// none to some (true) or from some to none (false), so that it can
	// tell the other replicas. It must not block.
	Subscribers(any bool)
}

// Config configures a Bus.
type Config struct {
	// Buffer is each subscription's buffer (default 256 messages).
	Buffer int
	// Relay, if set, receives every message published locally.
	Relay Relay
}

// Bus is an in-process publish/subscribe hub. The zero value is not usable;
// create one with New.
type Bus struct {
	buffer int
	relay  Relay

	count  atomic.Int64 // subscriptions, read without the lock
	mu     sync.RWMutex
	apps   map[string]*appSubs
	closed bool
}

// appSubs indexes an app's subscriptions by topic and, when their filter
// names one exact event type, by that type, so a message reaches only the
// subscriptions that may want it (hundreds of consoles each watching their
// own event type cost nothing for the others' messages).
type appSubs struct {
	byType map[typeKey]map[*Subscription]struct{} // exact event type filters
	any    map[Topic]map[*Subscription]struct{}   // no filter or a pattern
	n      int
}

type typeKey struct {
	topic Topic
	typ   string
}

func (a *appSubs) bucket(s *Subscription) map[*Subscription]struct{} {
	f := s.filter
	if f.EventType != "" && !webhook.IsWildcard(f.EventType) {
		k := typeKey{f.Topic, f.EventType}
		if a.byType[k] == nil {
			a.byType[k] = make(map[*Subscription]struct{})
		}
		return a.byType[k]
	}
	if a.any[f.Topic] == nil {
		a.any[f.Topic] = make(map[*Subscription]struct{})
	}
	return a.any[f.Topic]
}

// New returns a Bus.
func New(cfg Config) *Bus {
	if cfg.Buffer <= 0 {
		cfg.Buffer = 256
	}
	return &Bus{buffer: cfg.Buffer, relay: cfg.Relay, apps: make(map[string]*appSubs)}
}

// Subscription receives the messages matching its filter on C until Done
// is closed.
type Subscription struct {
	// C delivers messages. It is never closed; stop reading when Done is.
	// Messages are shared between subscribers: do not modify them. It is
	// nil for a subscription started with SubscribeFunc.
	C <-chan *Message

	c      chan *Message
	take   func(*Message) bool // SubscribeFunc's, instead of c
	ended  func(error)         // SubscribeFunc's
	filter Filter
	bus    *Bus
	done   chan struct{}
	once   sync.Once
	gone   sync.Once // ended is called
	err    atomic.Pointer[error]
}

// Done is closed when the subscription ends: by Close, because it lagged,
// or because the bus closed.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err says why the subscription ended: nil after Close, ErrLagged or
// ErrClosed.
func (s *Subscription) Err() error {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Close ends the subscription. It is safe to call more than once.
func (s *Subscription) Close() {
	s.end(nil)
	s.bus.remove(s)
	s.finish()
}

// finish tells a SubscribeFunc subscription's owner that it ended, once
// it is off the bus: take is not called again.
func (s *Subscription) finish() {
	if s.ended != nil {
		s.gone.Do(func() { s.ended(s.Err()) })
	}
}

func (s *Subscription) end(err error) {
	s.once.Do(func() {
		if err != nil {
			s.err.Store(&err)
		}
		close(s.done)
	})
}

// Subscribe starts a subscription. f.AppID must be set.
func (b *Bus) Subscribe(f Filter) (*Subscription, error) {
	c := make(chan *Message, b.buffer)
	return b.subscribe(&Subscription{C: c, c: c, filter: f, bus: b, done: make(chan struct{})})
}

// SubscribeFunc starts a subscription whose messages are handed to take
// instead of sent on C: no goroutine of the subscriber's need wake for
// each message to pass it on. take runs on the publisher's goroutine and
// must not block; it returns false when it cannot hold the message, which
// counts as a full buffer (the subscription lags, or with f.Coalesce the
// message is dropped). ended is called once, when the subscription has
// ended and take will not be called again: after Close (with nil), or
// after it lagged or the bus closed (with Err's error).
func (b *Bus) SubscribeFunc(f Filter, take func(*Message) bool, ended func(error)) (*Subscription, error) {
	return b.subscribe(&Subscription{take: take, ended: ended, filter: f, bus: b, done: make(chan struct{})})
}

func (b *Bus) subscribe(s *Subscription) (*Subscription, error) {
	f := s.filter
	if f.AppID == "" || f.Topic == 0 {
		return nil, errors.New("bus: a subscription needs a topic and an app")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	a := b.apps[f.AppID]
	if a == nil {
		a = &appSubs{byType: make(map[typeKey]map[*Subscription]struct{}), any: make(map[Topic]map[*Subscription]struct{})}
		b.apps[f.AppID] = a
	}
	a.bucket(s)[s] = struct{}{}
	a.n++
	if b.count.Add(1) == 1 && b.relay != nil {
		b.relay.Subscribers(true) // under b.mu: transitions are told in order
	}
	return s, nil
}

func (b *Bus) remove(s *Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.apps[s.filter.AppID]
	if a == nil {
		return
	}
	bucket := a.bucket(s)
	if _, ok := bucket[s]; !ok {
		return
	}
	delete(bucket, s)
	a.n--
	if a.n == 0 {
		delete(b.apps, s.filter.AppID)
	}
	if b.count.Add(-1) == 0 && b.relay != nil {
		b.relay.Subscribers(false)
	}
}

// Buffer is how many messages a subscription may fall behind before it
// lags (Config.Buffer): the size of C's buffer, and of whatever a
// SubscribeFunc subscriber holds.
func (b *Bus) Buffer() int { return b.buffer }

// Active reports how many subscriptions are open.
func (b *Bus) Active() int { return int(b.count.Load()) }

// Wanted reports whether Publish would carry a message anywhere: a local
// subscription is open, or another replica has subscribers (the relay
// knows). Publishers check it before building a message; it costs an
// atomic load or two.
func (b *Bus) Wanted() bool { return b.count.Load() > 0 || (b.relay != nil && b.relay.Wanted()) }

// Publish delivers m to matching local subscriptions and to the relay. It
// never blocks; with no subscriptions it costs an atomic load.
func (b *Bus) Publish(m Message) {
	if b.relay != nil && b.relay.Wanted() {
		b.relay.Send(m)
	}
	b.Deliver(m)
}

// Deliver delivers m to matching local subscriptions only (for messages
// that arrive from a relay).
func (b *Bus) Deliver(m Message) {
	if b.count.Load() == 0 {
		return
	}
	shared := m // escapes: copied only when someone listens
	b.deliverShared(&shared)
}

// deliverShared fans one message out; subscribers share it.
func (b *Bus) deliverShared(m *Message) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	a := b.apps[m.AppID]
	if a == nil {
		return
	}
	deliver(a.byType[typeKey{m.Topic, m.EventType}], m)
	deliver(a.any[m.Topic], m)
}

func deliver(subs map[*Subscription]struct{}, m *Message) {
	for s := range subs {
		if !s.filter.match(m) {
			continue
		}
		select {
		case <-s.done:
			continue // ended, waiting for its owner to Close it
		default:
		}
		if s.take != nil {
			if !s.take(m) && !s.filter.Coalesce {
				s.end(ErrLagged)
				// Off the bus, which this goroutine holds for reading.
				go s.Close()
			}
			continue
		}
		select {
		case s.c <- m:
		default:
			if !s.filter.Coalesce {
				s.end(ErrLagged)
			}
		}
	}
}

// Close ends every subscription with ErrClosed.
func (b *Bus) Close() {
	var ended []*Subscription
	defer func() {
		for _, s := range ended {
			s.finish() // outside the lock: ended may call back
		}
	}()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for app, a := range b.apps {
		for _, subs := range a.byType {
			for s := range subs {
				s.end(ErrClosed)
				ended = append(ended, s)
			}
		}
		for _, subs := range a.any {
			for s := range subs {
				s.end(ErrClosed)
				ended = append(ended, s)
			}
		}
		delete(b.apps, app)
	}
	if b.count.Swap(0) > 0 && b.relay != nil {
		b.relay.Subscribers(false)
	}
}
