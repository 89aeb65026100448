package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/gorilla/websocket"

	"github.com/heraldhq/herald/fair"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/tenant"
)

// appTurn runs each API operation over HTTP in a turn of its app on the
// cores (package fair): one app's requests, however many and however
// costly, keep at most its share of the cores busy, and another app's
// operation finds a core free instead of waiting behind them. What is not
// work on the cores happens outside the turn: the body is read before it
// is taken (a slow client holds nothing another request needs), and the
// answer is written after it is given back. Operations give the turn back
// while they wait (fair.Pause): for a turn of their app's other limits,
// their publish's commit, a test's attempt.
//
// Websocket connections are bounded by the live limits instead.
func (s *Server) appTurn(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, ok := tenant.FromContext(r.Context())
		if !ok || websocket.IsWebSocketUpgrade(r) {
			next.ServeHTTP(w, r)
			return
		}
		if _, read := r.Body.(*readBody); !read && r.Body != nil && r.Body != http.NoBody {
			// limitBody checked the declared length against the limit.
			b, err := readAll(r.Body, r.ContentLength)
			if err != nil {
				writeGraphQLError(w, http.StatusBadRequest, fault.BadUserInput, "could not read the request body in time")
				return
			}
			r.Body = newReadBody(b)
		}
		ctx, release, err := s.turns.Take(r.Context(), v.AppID)
		if err != nil {
			if errors.Is(err, fair.ErrWaited) {
				err = &fault.Error{Code: fault.Forbidden, Reason: "RATE_LIMITED", Message: fmt.Sprintf(
					"this app's operations are using its whole share of Herald's cores (%d at once), and this one waited %s for its turn: retry shortly, or send fewer or lighter requests at once",
					s.turns.PerApp(), s.cfg.TurnWait)}
			}
			if ctx.Err() != nil {
				return // the client left
			}
			writeTurnRefused(w, err)
			return
		}
		rw := newHeldResponse(w)
		defer rw.free()
		func() {
			defer release()
			next.ServeHTTP(rw, r.WithContext(ctx))
		}()
		rw.send()
	})
}

// readBody is a request body read in full (by limitBody, chunked, or by
// appTurn before the operation's turn): the POST transport takes its
// bytes as they are.
type readBody struct {
	*bytes.Reader
	b []byte
}

func newReadBody(b []byte) *readBody { return &readBody{Reader: bytes.NewReader(b), b: b} }

// Close implements io.Closer.
func (*readBody) Close() error { return nil }

// readAll reads body, of size bytes (-1: unknown), into a buffer of that
// size rather than one grown as it fills.
func readAll(body io.Reader, size int64) ([]byte, error) {
	if size < 0 {
		return io.ReadAll(body)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(body, b); err != nil {
		return nil, err
	}
	return b, nil
}

// requestBody returns the body of r, read.
func requestBody(r *http.Request) ([]byte, error) {
	if rb, ok := r.Body.(*readBody); ok {
		return rb.b, nil
	}
	return readAll(r.Body, r.ContentLength)
}

// heldResponse keeps an answer while the operation holds its turn; send
// writes it out once the turn is given back, so that a client slow to read
// holds no turn.
type heldResponse struct {
	w      http.ResponseWriter
	status int
	buf    *bytes.Buffer
}

// heldBuffers are the buffers of answers, reused.
var heldBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledAnswer is the largest buffer kept for reuse: a rare large answer
// does not stay in memory.
const maxPooledAnswer = 1 << 20

func newHeldResponse(w http.ResponseWriter) *heldResponse {
	return &heldResponse{w: w, buf: heldBuffers.Get().(*bytes.Buffer)}
}

// Header implements http.ResponseWriter.
func (h *heldResponse) Header() http.Header { return h.w.Header() }

// WriteHeader implements http.ResponseWriter.
func (h *heldResponse) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
}

// Write implements http.ResponseWriter.
func (h *heldResponse) Write(b []byte) (int, error) { return h.buf.Write(b) }

// send writes the held answer.
func (h *heldResponse) send() {
	if h.status != 0 {
		h.w.WriteHeader(h.status)
	}
	_, _ = h.w.Write(h.buf.Bytes())
}

func (h *heldResponse) free() {
	if h.buf.Cap() <= maxPooledAnswer {
		h.buf.Reset()
		heldBuffers.Put(h.buf)
	}
	h.buf = nil
}
