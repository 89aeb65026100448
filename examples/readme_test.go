package examples_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// docSection returns the text of a section of a documentation page: page
// is "README.md" or the name of a page in docs/ ("routing.md"), heading a
// whole heading line ("## Scheduled delivery"). The section ends at the
// next heading of the same or a higher level.
func docSection(t *testing.T, page, heading string) string {
	t.Helper()
	path := filepath.Join("..", "docs", page)
	if page == "README.md" {
		path = filepath.Join("..", page)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("%s has no %q", page, heading)
	}
	level := strings.Index(heading, " ")
	var out []string
	fence := false
	for _, line := range strings.Split(rest, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			fence = !fence
		}
		if !fence {
			if n := strings.Index(line, " "); n > 0 && n <= level && strings.Trim(line[:n], "#") == "" {
				break
			}
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// codeBlocks returns the code blocks of a section in order, each with its
// language, unindented (the README's blocks sit in list items).
func codeBlocks(section string) (langs, blocks []string) {
	for _, m := range regexp.MustCompile("(?ms)^( *)```(\\w*)\n(.*?)\n *```").FindAllStringSubmatch(section, -1) {
		lines := strings.Split(m[3], "\n")
		for i, l := range lines {
			lines[i] = strings.TrimPrefix(l, m[1])
		}
		langs = append(langs, m[2])
		blocks = append(blocks, strings.Join(lines, "\n"))
	}
	return langs, blocks
}

// TestReadme_ScheduledDeliveryExampleIsAccepted publishes the
// scheduled-delivery example of docs/routing.md on a server with the
// example catalog (as make run has): the type and payload it shows are
// accepted, and the delivery waits for deliverAt (moved to an hour from
// now, since a date in the docs ages).
func TestReadme_ScheduledDeliveryExampleIsAccepted(t *testing.T) {
	t.Parallel()
	langs, blocks := codeBlocks(docSection(t, "routing.md", "## Scheduled delivery"))
	if len(blocks) != 1 || langs[0] != "graphql" {
		t.Fatalf("docs/routing.md's scheduled delivery has %d code blocks %q, want one GraphQL example", len(blocks), langs)
	}
	at := time.Now().UTC().Add(time.Hour).Truncate(time.Second)
	op := regexp.MustCompile(`deliverAt: "[^"]+"`).ReplaceAllString(blocks[0], `deliverAt: "`+at.Format(time.RFC3339)+`"`)
	if op == blocks[0] {
		t.Fatalf("the example sets no deliverAt:\n%s", blocks[0])
	}
	s := heraldtest.Start(t)
	var out struct {
		PublishEvent struct {
			ID        string
			DeliverAt time.Time
		}
	}
	s.As(t, s.Token).Must(&out, op, nil)
	if !out.PublishEvent.DeliverAt.Equal(at) {
		t.Errorf("deliverAt = %v, want %v", out.PublishEvent.DeliverAt, at)
	}
}

// TestReadme_TourWorksAsWritten follows the README's five-minute tour
// with a herald process and the receiver it starts: the first-start
// message "Two commands" shows, the Headers tab's
// JSON, the receiver command, each GraphQL operation in order (the
// receiver's address replaced by a free one), the console and the portal
// link the tour opens.
func TestReadme_TourWorksAsWritten(t *testing.T) {
	t.Parallel()
	bin := heraldtest.Binary(t)
	langs, blocks := codeBlocks(docSection(t, "README.md", "## Five minutes: GraphiQL, the console, the portal"))
	want := []string{"json", "sh", "graphql", "graphql", "graphql", "graphql"}
	if strings.Join(langs, " ") != strings.Join(want, " ") {
		t.Fatalf("the tour's code blocks are %q, want %q: update the test", langs, want)
	}
	h := heraldtest.StartProcess(t, bin, "--db", filepath.Join(t.TempDir(), "herald.db"))

	// The first start prints what "Two commands" shows.
	introLangs, intro := codeBlocks(docSection(t, "README.md", "## Two commands"))
	if len(intro) != 2 || introLangs[1] != "" {
		t.Fatalf("README.md's Two commands has code blocks %q, want the commands and the first-start message", introLangs)
	}
	if msg := strings.NewReplacer("http://localhost:8080", h.URL, "hrld_Qm9vYmFy…", h.Token).Replace(intro[1]); !strings.Contains(h.Output(), msg) {
		t.Errorf("herald's first start printed\n%s\nand README.md shows\n%s", h.Output(), msg)
	}

	// Step 1: the Headers tab.
	var headers map[string]string
	if err := json.Unmarshal([]byte(strings.Replace(blocks[0], "hrld_…", h.Token, 1)), &headers); err != nil {
		t.Fatalf("the Headers JSON: %v\n%s", err, blocks[0])
	}
	token, ok := strings.CutPrefix(headers["Authorization"], "Bearer ")
	if !ok || token != h.Token {
		t.Fatalf("the Headers JSON gives Authorization %q", headers["Authorization"])
	}

	// Step 2: the receiver, on a free port instead of 9000.
	const docAddr = "127.0.0.1:9000"
	cmd, ok := strings.CutPrefix(blocks[1], "go run ./cmd/herald ")
	if !ok || !strings.Contains(cmd, docAddr) {
		t.Fatalf("the receiver command is %q: update the test", blocks[1])
	}
	addr := heraldtest.FreeAddr(t)
	args := strings.Fields(strings.Replace(cmd, docAddr, addr, 1))
	rc := start(t, ".", nil, bin, args...)
	rc.wait(t, "listening on")

	// Step 3: the endpoint, sending to that receiver.
	var created struct {
		CreateEndpoint struct {
			Secret   string
			Endpoint struct{ ID, Health string }
		}
	}
	op := strings.Replace(blocks[2], docAddr, addr, 1)
	if op == blocks[2] {
		t.Fatalf("the createEndpoint example no longer sends to %s: update the test", docAddr)
	}
	mustDecode(t, h.GraphQL(t, token, op, nil), &created)
	if !strings.HasPrefix(created.CreateEndpoint.Secret, "whsec_") {
		t.Fatalf("createEndpoint returned secret %q", created.CreateEndpoint.Secret)
	}

	// Step 4: publish; the receiver prints the delivery.
	var published struct {
		PublishEvent struct {
			ID            string
			DeliveryCount int
		}
	}
	mustDecode(t, h.GraphQL(t, token, blocks[3], nil), &published)
	if published.PublishEvent.DeliveryCount != 1 {
		t.Fatalf("publishEvent made %d deliveries, want 1", published.PublishEvent.DeliveryCount)
	}
	rc.wait(t, `order\.created[^\n]*→ 200`)
	rc.wait(t, `"orderId": "ord_1042"`)

	// Step 5: the delivery and its attempt, as the query shows them.
	var list struct {
		Deliveries struct {
			Edges []struct {
				Node struct {
					Status       string
					AttemptCount int
					EventType    string
					Attempts     struct {
						Edges []struct{ Node struct{ ResponseStatus int } }
					}
				}
			}
		}
	}
	if !heraldtest.Eventually(30*time.Second, func() bool {
		mustDecode(t, h.GraphQL(t, token, blocks[4], nil), &list)
		e := list.Deliveries.Edges
		return len(e) == 1 && e[0].Node.Status == "SUCCEEDED"
	}) {
		t.Fatalf("the deliveries query never showed one SUCCEEDED delivery: %+v", list)
	}
	if n := list.Deliveries.Edges[0].Node; n.EventType != "order.created" || len(n.Attempts.Edges) != 1 || n.Attempts.Edges[0].Node.ResponseStatus != 200 {
		t.Errorf("the deliveries query shows %+v", n)
	}

	// Step 3's and 5's restarts: with the secret the receiver verifies
	// the signature; answering 500, the next event's delivery retries.
	_ = rc.cmd.Process.Kill()
	_ = rc.cmd.Wait()
	if !strings.Contains(blocks[3], `idempotencyKey: "order-1042-created"`) {
		t.Fatalf("the publishEvent example has no idempotencyKey to change: update the test")
	}
	rc = start(t, ".", nil, bin, append(args, "--secret", created.CreateEndpoint.Secret, "--status", "500")...)
	rc.wait(t, "listening on")
	mustDecode(t, h.GraphQL(t, token, strings.Replace(blocks[3], "order-1042-created", "order-1042-created-again", 1), nil), &published)
	if published.PublishEvent.DeliveryCount != 1 {
		t.Fatalf("publishing again made %d deliveries, want 1", published.PublishEvent.DeliveryCount)
	}
	rc.wait(t, `order\.created[^\n]*→ 500\n[^\n]*\n  signature:  valid`)
	if !heraldtest.Eventually(30*time.Second, func() bool {
		mustDecode(t, h.GraphQL(t, token, blocks[4], nil), &list)
		e := list.Deliveries.Edges
		return len(e) == 2 && e[0].Node.Status == "RETRYING"
	}) {
		t.Fatalf("the deliveries query never showed the new delivery RETRYING: %+v", list)
	}

	// Step 6: the console.
	if body := get(t, h.URL+"/console"); !strings.Contains(body, "<script") {
		t.Errorf("GET /console: no page:\n%s", body)
	}

	// Step 7: a portal session; its link opens the portal, and the token
	// in its fragment reads the app's endpoints.
	var session struct {
		CreatePortalSession struct {
			URL       string
			ExpiresAt time.Time
		}
	}
	mustDecode(t, h.GraphQL(t, token, blocks[5], nil), &session)
	page, portalToken, ok := strings.Cut(session.CreatePortalSession.URL, "#token=")
	if !ok || !strings.HasPrefix(page, h.URL+"/portal/app_") {
		t.Fatalf("createPortalSession url = %q", session.CreatePortalSession.URL)
	}
	if d := time.Until(session.CreatePortalSession.ExpiresAt); d < 50*time.Minute || d > time.Hour {
		t.Errorf("the session expires in %v, want 1h", d)
	}
	if body := get(t, page); !strings.Contains(body, "<script") {
		t.Errorf("GET %s: no page:\n%s", page, body)
	}
	var eps struct{ Endpoints struct{ TotalCount int } }
	mustDecode(t, h.GraphQL(t, portalToken, `{ endpoints { totalCount } }`, nil), &eps)
	if eps.Endpoints.TotalCount != 1 {
		t.Errorf("the portal session sees %d endpoints, want 1", eps.Endpoints.TotalCount)
	}
}

func mustDecode(t *testing.T, data json.RawMessage, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
}

// get fetches url and returns its body, failing the test unless it is 200.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, b)
	}
	return string(b)
}
