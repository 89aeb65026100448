package httpdest_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/destination/destinationtest"
	"github.com/heraldhq/herald/destination/httpdest"
)

func TestConformance(t *testing.T) {
	got := make(chan destinationtest.Received, 100)
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/gone":
			w.WriteHeader(http.StatusNotFound)
			return
		case "/busy":
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		body, _ := io.ReadAll(r.Body)
		h := map[string]string{}
		for name, vs := range r.Header {
			h[strings.ToLower(name)] = strings.Join(vs, ", ")
		}
		got <- destinationtest.Received{Body: body, Headers: h}
	}))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			conns[c] = true
		case http.StateClosed, http.StateHijacked:
			delete(conns, c)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	endpoint := func(path string) func(string) destination.Endpoint {
		return func(a string) destination.Endpoint {
			return destination.Endpoint{ID: "ep_http", Type: destination.HTTP, URL: "http://" + a + path, Timeout: 10 * time.Second}
		}
	}
	throttled := endpoint("/busy")(addr)
	destinationtest.Run(t, destinationtest.Harness{
		Spec:     httpdest.Spec(),
		Addr:     addr,
		Endpoint: endpoint("/hook"),
		Receive: func(ctx context.Context) (destinationtest.Received, error) {
			select {
			case r := <-got:
				return r, nil
			case <-ctx.Done():
				return destinationtest.Received{}, ctx.Err()
			}
		},
		Permanent:     endpoint("/gone")(addr),
		PermanentSays: "HTTP 404",
		Throttled:     &throttled,
		Conns: func() int {
			mu.Lock()
			defer mu.Unlock()
			return len(conns)
		},
	})
}
