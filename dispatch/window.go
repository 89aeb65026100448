package dispatch

import "sync"

// window bounds what the engine holds: deliveries claimed or handed off
// and not yet recorded or released, with their rendered bodies. It owns
// the engine's two memory invariants:
//
//   - at most max deliveries are held in all, whatever the number of
//     endpoints;
//   - at most perEndpoint of them belong to one endpoint until their
//     attempt ends (leave): an endpoint's share bounds what is queued for
//     it and in flight, while results waiting for the recorder count
//     toward the total only, so a commit's latency does not idle the
//     endpoint's requests.
//
// Every path that takes deliveries (claims, hand-offs from publishing)
// acquires room first, and every path that lets them go (recording,
// releasing) gives it back. A closed window grants nothing.
//
// Hand-offs may fill the window only up to max − reserve: the rest is kept
// for claims, so that retries and a backlog waiting in the store are sent
// even while publishing keeps the engine busy.
type window struct {
	max, perEndpoint, reserve int

	mu         sync.Mutex
	total      int
	byEndpoint map[string]int
	closed     bool
}

func newWindow(max, perEndpoint int) *window {
	return &window{max: max, perEndpoint: perEndpoint, reserve: max / 4, byEndpoint: make(map[string]int)}
}

// acquire takes room for up to n claimed deliveries of an endpoint and
// returns how many it got.
func (w *window) acquire(endpointID string, n int) int { return w.take(endpointID, n, w.max) }

// acquireHandOff takes room for up to n handed-off deliveries of an
// endpoint, leaving the reserve to claims, and returns how many it got.
func (w *window) acquireHandOff(endpointID string, n int) int {
	return w.take(endpointID, n, w.max-w.reserve)
}

func (w *window) take(endpointID string, n, limit int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0
	}
	n = min(n, limit-w.total, w.perEndpoint-w.byEndpoint[endpointID])
	if n <= 0 {
		return 0
	}
	w.total += n
	w.byEndpoint[endpointID] += n
	return n
}

// release gives back room for n deliveries of an endpoint.
func (w *window) release(endpointID string, n int) {
	if n <= 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.total -= n
	w.leaveLocked(endpointID, n)
}

// leave frees the endpoint's share of one delivery whose attempt ended;
// it keeps its place in the total until releaseLeft.
func (w *window) leave(endpointID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.leaveLocked(endpointID, 1)
}

// leaveLocked takes n deliveries off the endpoint's share.
func (w *window) leaveLocked(endpointID string, n int) {
	if left := w.byEndpoint[endpointID] - n; left > 0 {
		w.byEndpoint[endpointID] = left
	} else {
		delete(w.byEndpoint, endpointID)
	}
}

// releaseLeft gives back the room of n deliveries that left their
// endpoint's share already.
func (w *window) releaseLeft(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.total -= n
}

// room returns how many more deliveries of an endpoint the window would
// grant now.
func (w *window) room(endpointID string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0
	}
	return max(0, min(w.max-w.total, w.perEndpoint-w.byEndpoint[endpointID]))
}

// free returns how many more deliveries the window would grant in all.
func (w *window) free() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0
	}
	return w.max - w.total
}

// held returns how many deliveries are held in all.
func (w *window) held() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.total
}

// isClosed reports whether the window was closed.
func (w *window) isClosed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.closed
}

// close makes the window grant nothing more (shutdown).
func (w *window) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}
