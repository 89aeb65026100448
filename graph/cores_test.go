package graph_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/server"
)

// An app's operations work on its share of the cores (package fair; one
// turn here): while one of its operations runs scripts for 50 ms, its next
// operation waits for the turn and, past the server's wait, is refused
// RATE_LIMITED, while another app's operations run at once.
func TestCores_AnAppWorksOnItsShareOfTheCores(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *server.Config) { c.CoresPerApp, c.TurnWait = 1, 10*time.Millisecond })
	_, busy := s.NewApp("busy")
	_, other := s.NewApp("other")
	var q strings.Builder
	q.WriteString("{")
	for i := range 4 {
		fmt.Fprintf(&q, ` s%d: testTransformation(script: "function handler(w) { for (;;) {} }", payload: {}) { error }`, i)
	}
	q.WriteString(" }")
	// The busy app's and the other app's operations are probed from
	// goroutines of their own, so that a slow answer to one does not keep
	// the other from probing while the scripts run. A probe can only land
	// in the scripts' run by timing: on a loaded machine the scripts are
	// run again (up to three times) until a probe of the busy app has met
	// them.
	refused := 0
	for try := 0; try < 3 && refused == 0; try++ {
		done := make(chan struct{})
		scripts := make(chan *heraldtest.Response, 1)
		go func() { scripts <- s.Do(busy, q.String(), nil); close(done) }()
		busyRefused := make(chan int, 1)
		go func() {
			n := 0
			defer func() { busyRefused <- n }()
			for {
				select {
				case <-done:
					return
				default:
				}
				r := s.Do(busy, `{ viewer { app { id } } }`, nil)
				if len(r.Errors) > 0 {
					if r.Reason() != "RATE_LIMITED" || !strings.Contains(string(r.Body), "share of Herald's cores") {
						t.Errorf("the busy app's operation: %s, want refused RATE_LIMITED for its turns on the cores", r.Body)
						return
					}
					n++
				}
			}
		}()
		for running := true; running; {
			select {
			case <-done:
				running = false
			default:
				s.As(t, other).Must(nil, `{ viewer { app { id } } }`, nil) // never waits for the busy app
			}
		}
		if r := <-scripts; len(r.Errors) > 0 || !strings.Contains(string(r.Body), "time budget") {
			t.Fatalf("the scripts: %s, want stopped at their time budget", r.Body)
		}
		refused += <-busyRefused
	}
	if refused == 0 {
		t.Fatal("the busy app's operations never waited for its turn while its scripts ran")
	}
	s.As(t, busy).Must(nil, `{ viewer { app { id } } }`, nil) // the turn is back
}

// An operation that waits gives its turn on the cores back meanwhile: with
// one turn, a test send waiting for a slow endpoint leaves the app's
// other operations free to run, and takes the turn again to answer.
func TestCores_AWaitGivesTheTurnBack(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *server.Config) { c.CoresPerApp, c.TurnWait = 1, 200*time.Millisecond })
	_, app := s.NewApp("app")
	release := make(chan struct{})
	rc := heraldtest.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		<-release
		w.WriteHeader(http.StatusNoContent)
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	ep, _ := s.CreateEndpoint(app, map[string]any{"url": rc.URL})
	answer := make(chan *heraldtest.Response, 1)
	go func() {
		answer <- s.Do(app, `mutation($id: ID!) { testEndpoint(id: $id) { attempt { responseStatus } } }`, map[string]any{"id": ep})
	}()
	rc.WaitRequests(t, 1, 10*time.Second) // the test send waits for the endpoint
	for range 5 {
		s.As(t, app).Must(nil, `{ viewer { app { id } } }`, nil)
		s.As(t, app).Must(nil, `mutation { publishEvent(input: {eventType: "test.ping", payload: {}}) { id } }`, nil)
	}
	close(release)
	var out struct {
		TestEndpoint struct{ Attempt struct{ ResponseStatus int } }
	}
	(<-answer).Decode(t, &out)
	if out.TestEndpoint.Attempt.ResponseStatus != http.StatusNoContent {
		t.Errorf("the test send's attempt: %+v, want 204", out.TestEndpoint)
	}
}

// A request's body is read before its operation takes a turn on the cores:
// a client sending half a body holds nothing, and the app's other
// operations run meanwhile; the request runs once its body is complete.
func TestCores_ASlowBodyHoldsNoTurn(t *testing.T) {
	t.Parallel()
	s := heraldtest.Start(t, func(c *server.Config) { c.CoresPerApp, c.TurnWait = 1, 200*time.Millisecond })
	_, app := s.NewApp("app")
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"query": "{ viewer { app { id } } }"}`
	fmt.Fprintf(conn, "POST /graphql HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s",
		u.Host, app, len(body), body[:10])
	time.Sleep(50 * time.Millisecond) // the server reads the headers and waits for the rest
	for range 5 {
		s.As(t, app).Must(nil, `{ viewer { app { id } } }`, nil)
	}
	if _, err := conn.Write([]byte(body[10:])); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
	if resp.StatusCode != http.StatusOK || !strings.Contains(b.String(), `"app":{"id"`) {
		t.Errorf("the slow request: %d %s", resp.StatusCode, b.String())
	}
}
