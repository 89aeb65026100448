package listener

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/heraldhq/herald/webhook"
)

// Errors that end a session, or refuse a report.
var (
	// ErrReplaced ends a session when another session of the same
	// listener begins on this replica: the CLI reconnected, or another
	// herald listen took the listener over.
	ErrReplaced = errors.New("listener: another session of the listener began on this replica")
	// ErrMoved ends a session when another replica says a session of the
	// same listener began there.
	ErrMoved = errors.New("listener: another session of the listener began on another replica")
	// ErrStale refuses a report that no attempt waits for any more: its
	// attempt ended (the session that pushed it ended, or it timed out),
	// or it names a delivery or token this replica never pushed.
	ErrStale = errors.New("listener: no attempt waits for this report")
)

// HubConfig configures a Hub. Every field may be nil.
type HubConfig struct {
	// Announce tells the other replicas that a session of a listener
	// began here, so that they end theirs (see Hub.Evict).
	Announce func(listenerID, sessionID string)
	// Wake asks the delivery engine to look at a listener's due
	// deliveries: a session of it began or ended here.
	Wake func(listenerID string)
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

// Hub holds the listener sessions of one process: at most one per
// listener, the one deliveries of that listener are pushed to. It is the
// only owner of that knowledge; the engine asks it (through a listener's
// target) whether it may send, and the API hands it the reports.
type Hub struct {
	cfg HubConfig

	mu       sync.Mutex
	sessions map[string]*Session // by listener ID
}

// NewHub returns an empty hub.
func NewHub(cfg HubConfig) *Hub {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Hub{cfg: cfg, sessions: make(map[string]*Session)}
}

// Attach begins a session of a listener on this process: deliveries of the
// listener are pushed to it from now on. lastRead says when the session's
// connection last received anything from the CLI (nil: unknown). A session
// of the same listener that was here ends with ErrReplaced, and the other
// replicas are told to end theirs.
func (h *Hub) Attach(listenerID string, lastRead func() time.Time) *Session {
	s := &Session{
		ID: newToken(), Listener: listenerID, hub: h, lastRead: lastRead,
		pushes: make(chan *Push), done: make(chan struct{}), waiting: make(map[string]*waiter),
	}
	h.mu.Lock()
	old := h.sessions[listenerID]
	h.sessions[listenerID] = s
	h.mu.Unlock()
	if old != nil {
		old.end(ErrReplaced, false)
	}
	if h.cfg.Announce != nil {
		h.cfg.Announce(listenerID, s.ID)
	}
	h.wake(listenerID)
	return s
}

// Evict ends the session of a listener held here unless it is keep:
// another replica says a session of the listener (keep) began there.
func (h *Hub) Evict(listenerID, keep string) {
	h.mu.Lock()
	s := h.sessions[listenerID]
	h.mu.Unlock()
	if s != nil && s.ID != keep {
		s.End(ErrMoved)
	}
}

// Holding reports whether a session of the listener is held here.
func (h *Hub) Holding(listenerID string) bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sessions[listenerID] != nil
}

// Sessions returns how many sessions the hub holds.
func (h *Hub) Sessions() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions)
}

// Close ends every session with err.
func (h *Hub) Close(err error) {
	h.mu.Lock()
	all := make([]*Session, 0, len(h.sessions))
	for _, s := range h.sessions {
		all = append(all, s)
	}
	h.mu.Unlock()
	for _, s := range all {
		s.End(err)
	}
}

// Report hands the local answer to a pushed delivery to the attempt that
// waits for it. It returns ErrStale when none does: the report is late
// (the session that pushed the delivery ended, or the attempt timed out,
// and the delivery will be pushed again), or names a delivery or token
// that this replica did not push.
func (h *Hub) Report(listenerID string, r Report) error {
	h.mu.Lock()
	s := h.sessions[listenerID]
	h.mu.Unlock()
	if s == nil {
		return ErrStale
	}
	return s.report(r)
}

func (h *Hub) session(listenerID string) *Session {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sessions[listenerID]
}

func (h *Hub) wake(listenerID string) {
	if h.cfg.Wake != nil {
		h.cfg.Wake(listenerID)
	}
}

// Session is one herald listen connection holding a listener on this
// process: the deliveries pushed to it wait for their reports.
type Session struct {
	// ID names the session (random).
	ID string
	// Listener is the listener's endpoint ID.
	Listener string

	hub      *Hub
	lastRead func() time.Time
	pushes   chan *Push
	done     chan struct{}
	once     sync.Once
	err      error

	mu      sync.Mutex
	waiting map[string]*waiter // by token
}

type waiter struct {
	deliveryID string
	reply      chan Report // buffered 1
}

// Push is one delivery pushed to a session, as the CLI forwards it.
type Push struct {
	DeliveryID string
	EventID    string
	EventType  string
	// Attempt is the attempt's number (1 is the first).
	Attempt int
	// Token identifies this attempt: its report must carry it.
	Token string
	// Body and Headers are the request to forward, as Herald signed them.
	Body    []byte
	Headers []webhook.Header
	// Timeout bounds the local request; the report is awaited a little
	// longer (ReportGrace).
	Timeout time.Duration
}

// Report is what the local receiver answered to a pushed delivery.
type Report struct {
	DeliveryID string
	Token      string
	// Status is the local HTTP status (0: no answer; Error says why).
	Status  int
	Body    string
	Headers []webhook.Header
	// Duration is how long the local request took.
	Duration time.Duration
	Error    string
}

// Pushes delivers the session's pushes, one at a time.
func (s *Session) Pushes() <-chan *Push { return s.pushes }

// Done is closed once the session has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err says why the session ended (nil while it runs, or if it ended with
// a nil error: its connection closed).
func (s *Session) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// End ends the session with err (nil: its connection closed): deliveries
// are no longer pushed to it, and the attempts waiting for its reports
// give up, their deliveries due again for the listener's next session.
func (s *Session) End(err error) { s.end(err, true) }

// end ends the session; detach removes it from the hub if it is still the
// listener's session there (Attach replaced it already otherwise).
func (s *Session) end(err error, detach bool) {
	s.once.Do(func() {
		s.err = err
		removed := false
		if detach {
			s.hub.mu.Lock()
			if s.hub.sessions[s.Listener] == s {
				delete(s.hub.sessions, s.Listener)
				removed = true
			}
			s.hub.mu.Unlock()
		}
		close(s.done)
		if removed {
			// The engine gives the listener up, for another replica.
			s.hub.wake(s.Listener)
		}
	})
}

// silentSince reports whether the session's connection has received
// nothing since t, as far as it knows.
func (s *Session) silentSince(t time.Time) bool {
	return s.lastRead != nil && !s.lastRead().After(t)
}

// expect registers an attempt waiting for the report of a push.
func (s *Session) expect(p *Push) chan Report {
	w := &waiter{deliveryID: p.DeliveryID, reply: make(chan Report, 1)}
	s.mu.Lock()
	s.waiting[p.Token] = w
	s.mu.Unlock()
	return w.reply
}

// forget drops a waiting attempt: later reports of it are stale.
func (s *Session) forget(token string) {
	s.mu.Lock()
	delete(s.waiting, token)
	s.mu.Unlock()
}

func (s *Session) report(r Report) error {
	s.mu.Lock()
	w := s.waiting[r.Token]
	if w != nil && w.deliveryID == r.DeliveryID {
		delete(s.waiting, r.Token)
	} else {
		w = nil
	}
	s.mu.Unlock()
	if w == nil {
		return ErrStale
	}
	w.reply <- r
	return nil
}

// newToken returns 128 random bits in hex.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
