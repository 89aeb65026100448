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
//
// And one app may hold at most max − reserve, whatever the number of its
// endpoints, and at most max − reserve − reserve/2 by hand-offs: the rest
// is kept for the other apps, so that one app's thousand endpoints never
// take all the room from another's, and for its own claims (retries and
// backlog), so that its publishing never starves them.
type window struct {
	max, perEndpoint, reserve int

	mu         sync.Mutex
	total      int
	byEndpoint map[string]int
	byApp      map[string]int
	closed     bool
	// freed counts the room given back since the window was made: a
	// delivery released at once counts one, one that leaves its
	// endpoint's share first and the total later counts two. Each adds
	// at most one to what any endpoint is granted, so a claim refused for
	// want of room can succeed only once at least as much as it lacked
	// has been freed (see scheduler.futile).
	freed uint64
}

func newWindow(max, perEndpoint int) *window {
	return &window{max: max, perEndpoint: perEndpoint, reserve: max / 4, byEndpoint: make(map[string]int), byApp: make(map[string]int)}
}

// acquire takes room for up to n claimed deliveries of an endpoint of an
// app and returns how many it got.
func (w *window) acquire(endpointID, appID string, n int) int {
	return w.take(endpointID, appID, n, w.max, w.max-w.reserve)
}

// acquireHandOff takes room for up to n handed-off deliveries of an
// endpoint of an app, leaving the reserve to claims, and returns how many
// it got.
func (w *window) acquireHandOff(endpointID, appID string, n int) int {
	return w.take(endpointID, appID, n, w.max-w.reserve, w.max-w.reserve-w.reserve/2)
}

// take takes room for up to n deliveries of an endpoint of an app within
// limit in all and appLimit for the app.
func (w *window) take(endpointID, appID string, n, limit, appLimit int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0
	}
	n = min(n, limit-w.total, w.perEndpoint-w.byEndpoint[endpointID], appLimit-w.byApp[appID])
	if n <= 0 {
		return 0
	}
	w.total += n
	w.byEndpoint[endpointID] += n
	w.byApp[appID] += n
	return n
}

// release gives back room for n deliveries of an endpoint of an app.
func (w *window) release(endpointID, appID string, n int) {
	if n <= 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.freed += uint64(n)
	w.dropLocked(endpointID, appID, n)
}

// giveBack returns room for n deliveries that the caller acquired a moment
// ago and will not use. Unlike release it frees nothing that was held, so
// it does not count as freed.
func (w *window) giveBack(endpointID, appID string, n int) {
	if n <= 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dropLocked(endpointID, appID, n)
}

func (w *window) dropLocked(endpointID, appID string, n int) {
	w.total -= n
	w.leaveLocked(endpointID, n)
	w.releaseAppLocked(appID, n)
}

// releaseAppLocked takes n deliveries off the app's share.
func (w *window) releaseAppLocked(appID string, n int) {
	if left := w.byApp[appID] - n; left > 0 {
		w.byApp[appID] = left
	} else {
		delete(w.byApp, appID)
	}
}

// leave frees the endpoint's share of one delivery whose attempt ended;
// it keeps its place in the total until releaseLeft.
func (w *window) leave(endpointID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.freed++
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

// releaseLeft gives back the room of n deliveries of an app that left
// their endpoint's share already.
func (w *window) releaseLeft(appID string, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.total -= n
	w.freed += uint64(n)
	w.releaseAppLocked(appID, n)
}

// freedSoFar returns how much room has been given back since the window
// was made (see window.freed).
func (w *window) freedSoFar() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.freed
}

// appRoom returns how many more claimed deliveries of an app the window
// would grant now, to whichever of its endpoints.
func (w *window) appRoom(appID string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0
	}
	return max(0, min(w.max-w.total, w.max-w.reserve-w.byApp[appID]))
}

// room returns how many more deliveries of an endpoint of an app the
// window would grant now.
func (w *window) room(endpointID, appID string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0
	}
	return max(0, min(w.max-w.total, w.perEndpoint-w.byEndpoint[endpointID], w.max-w.reserve-w.byApp[appID]))
}

// heldBy returns how many deliveries of an endpoint the window holds
// (those whose attempts ended and await the recorder not counted).
func (w *window) heldBy(endpointID string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.byEndpoint[endpointID]
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
