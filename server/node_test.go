package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
	"github.com/heraldhq/herald/server"
)

// nodeDir holds subscribe.mjs, a client written with the reference
// graphql-ws library (and ws), installed from its lockfile by `make testdeps`.
var nodeDir = filepath.Join("testdata", "node")

// requireNode returns the path of node, or skips the test when node or the
// installed packages are missing; HERALD_REQUIRE_NODE=1 makes that a failure.
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		for _, pkg := range []string{"graphql-ws", "ws", "graphql"} {
			if _, err = os.Stat(filepath.Join(nodeDir, "node_modules", pkg, "package.json")); err != nil {
				break
			}
		}
	}
	if err == nil {
		return node
	}
	msg := "the graphql-ws client test needs node and `npm ci` in server/testdata/node (or `make testdeps`): " + err.Error()
	if os.Getenv("HERALD_REQUIRE_NODE") == "1" {
		t.Fatal(msg + " (HERALD_REQUIRE_NODE=1)")
	}
	t.Skip(msg)
	return ""
}

// nodeLine is one line subscribe.mjs prints: a result or its failure.
type nodeLine struct {
	Data *struct {
		DeliveryUpdated struct {
			Kind           string
			DeliveryID     string
			EventID        string
			EndpointID     string
			EventType      string
			Status         string
			AttemptNumber  *int
			ResponseStatus *int
			DurationMs     *int
		}
	}
	Errors  []heraldtest.Error
	Failure *struct {
		Code    int
		Reason  string
		Message string
	}
}

// nodeClient is a running subscribe.mjs.
type nodeClient struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
	err    error
}

// startNodeClient runs subscribe.mjs against s's websocket with token until
// it has printed want results; it is killed when the test ends.
func startNodeClient(t *testing.T, s *heraldtest.Server, token string, want int) *nodeClient {
	t.Helper()
	node := requireNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	wsURL := "ws" + strings.TrimPrefix(s.URL, "http") + "/graphql"
	c := &nodeClient{done: make(chan struct{})}
	c.cmd = exec.CommandContext(ctx, node, "subscribe.mjs", wsURL, token, strconv.Itoa(want), "20000")
	c.cmd.Dir = nodeDir
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
	if err := c.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start node subscribe.mjs: %v", err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-c.done
	})
	return c
}

// exited reports whether the client has ended.
func (c *nodeClient) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// wait waits for the client to exit and returns its exit code and output.
func (c *nodeClient) wait(t *testing.T) (int, []nodeLine) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("node subscribe.mjs still running after 30s\nstdout:\n%s\nstderr:\n%s", c.stdout.String(), c.stderr.String())
	}
	code := 0
	var exit *exec.ExitError
	if errors.As(c.err, &exit) {
		code = exit.ExitCode()
	} else if c.err != nil {
		t.Fatalf("node subscribe.mjs: %v\nstderr:\n%s", c.err, c.stderr.String())
	}
	var lines []nodeLine
	sc := bufio.NewScanner(bytes.NewReader(c.stdout.Bytes()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var l nodeLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("node subscribe.mjs printed %q: %v\nstderr:\n%s", sc.Text(), err, c.stderr.String())
		}
		lines = append(lines, l)
	}
	return code, lines
}

// waitNodeSubscribed waits until the server has n live subscriptions, and
// fails early with the client's output if it exits first.
func waitNodeSubscribed(t *testing.T, s *heraldtest.Server, c *nodeClient, n int) {
	t.Helper()
	ok := heraldtest.Eventually(15*time.Second, func() bool {
		_, subs := s.LiveStats()
		return subs >= n || c.exited()
	})
	if c.exited() {
		code, _ := c.wait(t)
		t.Fatalf("node subscribe.mjs exited (%d) before subscribing\nstdout:\n%s\nstderr:\n%s", code, c.stdout.String(), c.stderr.String())
	}
	if !ok {
		t.Fatalf("no subscription from node subscribe.mjs within 15s\nstderr:\n%s", c.stderr.String())
	}
}

func TestNodeGraphQLWS_ReceivesDeliveryUpdate(t *testing.T) {
	t.Parallel()
	requireNode(t)
	s := heraldtest.Start(t)
	rc := heraldtest.NewReceiver(t, nil)
	epID, _ := s.CreateEndpoint(s.Token, map[string]any{"url": rc.URL})

	c := startNodeClient(t, s, s.Token, 3)
	waitNodeSubscribed(t, s, c, 1)
	evID := s.Publish(s.Token, "order.created", map[string]any{"orderId": "ord_node"})

	code, lines := c.wait(t)
	if code != 0 || len(lines) != 3 {
		t.Fatalf("node subscribe.mjs exited %d with %d lines, want 0 and 3\nstdout:\n%s\nstderr:\n%s", code, len(lines), c.stdout.String(), c.stderr.String())
	}
	want := []struct{ kind, status string }{
		{"CREATED", "PENDING"},
		{"ATTEMPT_STARTED", "SENDING"},
		{"ATTEMPT_FINISHED", "SUCCEEDED"},
	}
	var deliveryID string
	for i, l := range lines {
		if l.Data == nil || len(l.Errors) > 0 {
			t.Fatalf("result %d: %s", i+1, c.stdout.String())
		}
		u := l.Data.DeliveryUpdated
		if u.Kind != want[i].kind || u.Status != want[i].status || u.EventID != evID || u.EndpointID != epID || u.EventType != "order.created" {
			t.Errorf("result %d = %+v, want %s/%s of event %s at %s", i+1, u, want[i].kind, want[i].status, evID, epID)
		}
		if deliveryID == "" {
			deliveryID = u.DeliveryID
		} else if u.DeliveryID != deliveryID {
			t.Errorf("result %d is about delivery %s, want %s", i+1, u.DeliveryID, deliveryID)
		}
	}
	last := lines[2].Data.DeliveryUpdated
	if last.ResponseStatus == nil || *last.ResponseStatus != 200 || last.DurationMs == nil || last.AttemptNumber == nil || *last.AttemptNumber != 1 {
		t.Errorf("ATTEMPT_FINISHED = %+v, want responseStatus 200, a duration and attempt 1", last)
	}
}

func TestNodeGraphQLWS_RejectedConnectionReportsCloseCode(t *testing.T) {
	t.Parallel()
	requireNode(t)
	for _, tc := range []struct {
		name      string
		configure func(*server.Config)
		// prepare returns the key the node client uses.
		prepare func(t *testing.T, s *heraldtest.Server) string
		want    int
	}{
		{
			name: "bad key",
			prepare: func(*testing.T, *heraldtest.Server) string {
				return "hrld_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
			},
			want: server.CloseUnauthorized,
		},
		{
			name:      "too many connections",
			configure: func(c *server.Config) { c.MaxConnectionsPerKey = 1 },
			prepare: func(t *testing.T, s *heraldtest.Server) string {
				ws, _, err := s.DialWS(heraldtest.TransportWS, nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(ws.Close)
				if err := ws.Init(map[string]any{"Authorization": "Bearer " + s.Token}); err != nil {
					t.Fatal(err)
				}
				return s.Token
			},
			want: server.CloseTooManyConnections,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var configure []func(*server.Config)
			if tc.configure != nil {
				configure = append(configure, tc.configure)
			}
			s := heraldtest.Start(t, configure...)
			key := tc.prepare(t, s)
			code, lines := startNodeClient(t, s, key, 1).wait(t)
			if code != 1 || len(lines) != 1 || lines[0].Failure == nil {
				t.Fatalf("node subscribe.mjs exited %d with %+v, want 1 and one failure line", code, lines)
			}
			if f := lines[0].Failure; f.Code != tc.want || f.Reason == "" {
				t.Fatalf("failure %+v, want close code %d with a reason", *f, tc.want)
			}
		})
	}
}
