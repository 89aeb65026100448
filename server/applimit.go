package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"golang.org/x/sync/semaphore"

	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/fair"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/graph"
	"github.com/heraldhq/herald/quota"
	"github.com/heraldhq/herald/tenant"
)

// appRequests bounds the API operations each app's credentials have in
// progress at once (its CONCURRENT_REQUESTS limit): one app's scripted
// flood of heavy queries or publishes waits its turn, in order, instead of
// taking every core and connection from the others. An operation waits at
// most maxWait for its turn; then it is refused (FORBIDDEN, reason
// RATE_LIMITED). Admin keys acting in an app count toward that app.
type appRequests struct {
	client  *ent.Client
	maxWait time.Duration
	now     func() time.Time

	mu   sync.Mutex
	apps map[string]*appSlots
}

// appSlots are one app's turns: any operation takes one of sem, and a
// heavy one (see heavy) also the app's one heavy turn, so that one app's
// heavy work takes at most one core at a time, whatever its limit.
type appSlots struct {
	sem     *semaphore.Weighted
	heavy   *semaphore.Weighted
	limit   int
	checked time.Time // when limit was last read
}

// heavyComplexity is the complexity from which an operation is heavy: a
// tenth of the limit, some 3 MiB of answer.
const heavyComplexity = graph.MaxComplexity / 10

// heavyBody is the request size from which an operation is heavy: a
// large payload to decode and match against every filter.
const heavyBody = 64 << 10

// appLimitTTL is how long an app's limit is used before it is read again.
const appLimitTTL = 5 * time.Second

func newAppRequests(client *ent.Client, maxWait time.Duration) *appRequests {
	return &appRequests{client: client, maxWait: maxWait, now: time.Now, apps: make(map[string]*appSlots)}
}

// acquire waits for a turn of the viewer's app (and its heavy turn, for a
// heavy operation) and returns the function that gives them back.
func (a *appRequests) acquire(ctx context.Context, v tenant.Viewer, heavy bool) (func(), error) {
	slots, err := a.slots(ctx, v.AppID)
	if err != nil {
		return nil, err
	}
	// The wait's deadline is made only when a turn is not free at once:
	// most operations find one, and a timer per request is not free.
	var wctx context.Context
	var cancel context.CancelFunc
	defer func() {
		if cancel != nil {
			cancel()
		}
	}()
	refused := func() error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &fault.Error{Code: fault.Forbidden, Reason: "RATE_LIMITED", Message: fmt.Sprintf(
			"this app already has %d API requests in progress, its %s limit (heavy ones, such as large queries and payloads, one at a time), and this one waited %s for its turn: retry shortly, send fewer requests at once, or ask the platform to raise the limit",
			slots.limit, quota.ConcurrentRequests, a.maxWait)}
	}
	// Waiting is not work: the operation's turn on the cores (package
	// fair) is given back meanwhile, for the app's operations it waits for.
	take := func(sem *semaphore.Weighted) error {
		if sem.TryAcquire(1) {
			return nil
		}
		if wctx == nil {
			wctx, cancel = context.WithTimeout(ctx, a.maxWait)
		}
		resume := fair.Pause(ctx)
		defer resume()
		return sem.Acquire(wctx, 1)
	}
	if err := take(slots.sem); err != nil {
		return nil, refused()
	}
	if heavy {
		if err := take(slots.heavy); err != nil {
			slots.sem.Release(1)
			return nil, refused()
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			if heavy {
				slots.heavy.Release(1)
			}
			slots.sem.Release(1)
		})
	}, nil
}

// slots returns an app's turns, reading its limit again when it is old.
func (a *appRequests) slots(ctx context.Context, appID string) (*appSlots, error) {
	now := a.now()
	a.mu.Lock()
	s := a.apps[appID]
	fresh := s != nil && now.Sub(s.checked) < appLimitTTL
	a.mu.Unlock()
	if fresh {
		return s, nil
	}
	limit, err := quota.Get(ctx, a.client, appID, quota.ConcurrentRequests)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s = a.apps[appID]
	if s == nil || s.limit != limit {
		// Requests holding turns of the old limit give them back there.
		s = &appSlots{sem: semaphore.NewWeighted(int64(limit)), heavy: semaphore.NewWeighted(1), limit: limit}
		a.apps[appID] = s
	}
	s.checked = now
	return s, nil
}

// isHeavy reports whether an operation is heavy: costly by the complexity
// limit's estimate, or sent with a large body (a large payload to decode
// and match against every filter of the app).
func isHeavy(ctx context.Context, oc *graphql.OperationContext) bool {
	if bodySize(ctx) >= heavyBody {
		return true
	}
	if st := extension.GetComplexityStats(ctx); st != nil && st.Complexity >= heavyComplexity {
		return true
	}
	return false
}

// turnRefused is the GraphQL error of a request that did not get its
// app's turn.
func turnRefused(err error) *gqlerror.Error {
	f, ok := fault.As(err)
	if !ok {
		f = &fault.Error{Code: fault.Internal, Message: "the request could not wait for its turn: " + err.Error()}
	}
	return faultError(f)
}

// writeTurnRefused answers a request that did not get its app's turn.
func writeTurnRefused(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": gqlerror.List{turnRefused(err)}})
}

// turnKey marks a request context whose app turn heavyTurn already took.
type turnKey struct{}

// heavyTurn takes the app's heavy turn for a request with a large body
// before the body is decoded. Decoding a large payload costs about as much
// CPU as publishing it, and gqlgen decodes before takeTurns runs: without
// this an app's large requests, each waiting for its heavy turn, would
// decode at once on every core and leave none to the other apps.
func (s *Server) heavyTurn(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, ok := tenant.FromContext(r.Context())
		if !ok || bodySize(r.Context()) < heavyBody {
			next.ServeHTTP(w, r)
			return
		}
		release, err := s.requests.acquire(r.Context(), v, true)
		if err != nil {
			writeTurnRefused(w, err)
			return
		}
		defer release()
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), turnKey{}, true)))
	})
}

// takeTurns is a gqlgen operation interceptor: every query and mutation
// runs in a turn of its caller's app (see appRequests), unless heavyTurn
// took it for the request. Subscriptions are bounded by the live limits
// instead.
func (s *Server) takeTurns(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	v, ok := tenant.FromContext(ctx)
	if !ok || oc.Operation == nil || oc.Operation.Operation == ast.Subscription || ctx.Value(turnKey{}) != nil {
		return next(ctx)
	}
	release, err := s.requests.acquire(ctx, v, isHeavy(ctx, oc))
	if err != nil {
		return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{turnRefused(err)}})
	}
	h := next(ctx)
	return func(ctx context.Context) *graphql.Response {
		defer release()
		return h(ctx)
	}
}
