package dispatch

import (
	"strings"
	"sync"
)

// leaseLedger holds the SQLite driver's leases. One process owns a SQLite
// database (package db locks it), so its engine is the only claimer and
// its memory is the lease: claiming writes nothing, and after a crash every
// unfinished delivery is simply due again.
//
// Claims read the due index from a read pool, whose snapshot may predate
// a commit that finished or cancelled a delivery it returns. So while a
// claim reads, the ledger remembers the deliveries that stop being held or
// are cancelled (the claim's tomb), and the claim drops them; endpoints
// being cancelled and deliveries being requeued are skipped the same way.
type leaseLedger struct {
	mu   sync.Mutex
	held map[string]map[string]struct{} // endpoint → deliveries
	n    int
	// claims are the claims reading now; each collects the deliveries
	// released or cancelled meanwhile.
	claims map[*claimRead]struct{}
	// cancelling counts cancellations in progress per endpoint; requeueing
	// holds deliveries being requeued.
	cancelling map[string]int
	requeueing map[string]struct{}
}

// claimRead is one claim in progress.
type claimRead struct {
	tomb map[string]struct{}
}

func newLeaseLedger() *leaseLedger {
	return &leaseLedger{
		held:       make(map[string]map[string]struct{}),
		claims:     make(map[*claimRead]struct{}),
		cancelling: make(map[string]int),
		requeueing: make(map[string]struct{}),
	}
}

// beginClaim starts a claim's read.
func (l *leaseLedger) beginClaim() *claimRead {
	c := &claimRead{}
	l.mu.Lock()
	l.claims[c] = struct{}{}
	l.mu.Unlock()
	return c
}

// endClaim ends a claim's read: it holds the jobs the claim may take (not
// held, not released or cancelled while it read, not being requeued, of an
// endpoint not being cancelled) and returns them.
func (l *leaseLedger) endClaim(c *claimRead, jobs []Job) []Job {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.claims, c)
	out := jobs[:0]
	for _, j := range jobs {
		if _, gone := c.tomb[j.DeliveryID]; gone {
			continue
		}
		if _, ok := l.requeueing[j.DeliveryID]; ok || l.cancelling[j.EndpointID] > 0 {
			continue
		}
		if !l.holdLocked(j.EndpointID, j.DeliveryID) {
			continue
		}
		out = append(out, j)
	}
	return out
}

// hold holds deliveries of new rows (hand-offs).
func (l *leaseLedger) hold(rows []DeliveryRow) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range rows {
		l.holdLocked(r.EndpointID, r.ID)
	}
}

// holdLocked holds a delivery and reports whether it was not held before.
func (l *leaseLedger) holdLocked(endpointID, id string) bool {
	set := l.held[endpointID]
	if set == nil {
		set = make(map[string]struct{})
		l.held[endpointID] = set
	}
	if _, ok := set[id]; ok {
		return false
	}
	set[id] = struct{}{}
	l.n++
	return true
}

// holds reports whether a delivery is held.
func (l *leaseLedger) holds(endpointID, id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.held[endpointID][id]
	return ok
}

// heldCount returns how many deliveries of an endpoint are held.
func (l *leaseLedger) heldCount(endpointID string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.held[endpointID])
}

// heldJSON returns the deliveries of an endpoint that are held, as a JSON
// array of their IDs (which need no escaping).
func (l *leaseLedger) heldJSON(endpointID string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	set := l.held[endpointID]
	if len(set) == 0 {
		return "[]"
	}
	var b strings.Builder
	b.Grow(len(set) * 34)
	b.WriteByte('[')
	for id := range set {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(id)
		b.WriteByte('"')
	}
	b.WriteByte(']')
	return b.String()
}

// release stops holding deliveries.
func (l *leaseLedger) release(leases []Lease) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ls := range leases {
		l.releaseLocked(ls.EndpointID, ls.DeliveryID)
	}
}

// releaseRows stops holding deliveries of rows (a rolled back hand-off).
func (l *leaseLedger) releaseRows(rows []DeliveryRow) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range rows {
		l.releaseLocked(r.EndpointID, r.ID)
	}
}

func (l *leaseLedger) releaseLocked(endpointID, id string) {
	if set := l.held[endpointID]; set != nil {
		if _, ok := set[id]; ok {
			delete(set, id)
			l.n--
			if len(set) == 0 {
				delete(l.held, endpointID)
			}
		}
	}
	l.buryLocked(id)
}

// buryLocked adds a delivery to the tomb of every claim reading now.
func (l *leaseLedger) buryLocked(id string) {
	for c := range l.claims {
		if c.tomb == nil {
			c.tomb = make(map[string]struct{})
		}
		c.tomb[id] = struct{}{}
	}
}

// beginCancel returns the deliveries of an endpoint that are held, and
// marks the endpoint as being cancelled until endCancel: claims drop its
// deliveries meanwhile.
func (l *leaseLedger) beginCancel(endpointID string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cancelling[endpointID]++
	ids := make([]string, 0, len(l.held[endpointID]))
	for id := range l.held[endpointID] {
		ids = append(ids, id)
	}
	return ids
}

// endCancel ends a cancellation; claims reading now drop the cancelled
// deliveries.
func (l *leaseLedger) endCancel(endpointID string, cancelled []DeliveryRef) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range cancelled {
		l.buryLocked(d.ID)
	}
	if l.cancelling[endpointID]--; l.cancelling[endpointID] <= 0 {
		delete(l.cancelling, endpointID)
	}
}

// beginRequeue marks the deliveries that are not held as being requeued
// and returns them with how many were held.
func (l *leaseLedger) beginRequeue(refs []DeliveryRef) (free []DeliveryRef, leased int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range refs {
		if _, ok := l.held[d.EndpointID][d.ID]; ok {
			leased++
			continue
		}
		if _, ok := l.requeueing[d.ID]; ok {
			leased++ // another requeue has it
			continue
		}
		l.requeueing[d.ID] = struct{}{}
		free = append(free, d)
	}
	return free, leased
}

// endRequeue ends a requeue of deliveries.
func (l *leaseLedger) endRequeue(refs []DeliveryRef) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range refs {
		delete(l.requeueing, d.ID)
	}
}

// count returns how many deliveries are held.
func (l *leaseLedger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}
