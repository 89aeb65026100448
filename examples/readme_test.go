package examples_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/heraldtest"
)

// TestReadme_ScheduledDeliveryExampleIsAccepted publishes the README's
// scheduled-delivery example on a server with the example catalog (as
// make run has): the type and payload it shows are accepted, and the
// delivery waits for deliverAt (moved to an hour from now, since a date
// in the README ages).
func TestReadme_ScheduledDeliveryExampleIsAccepted(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "### Scheduled delivery\n")
	if !ok {
		t.Fatal(`README.md has no "### Scheduled delivery"`)
	}
	m := regexp.MustCompile("(?s)```graphql\n(.*?)\n```").FindStringSubmatch(rest)
	if m == nil {
		t.Fatal("README.md's scheduled delivery has no GraphQL example")
	}
	at := time.Now().UTC().Add(time.Hour).Truncate(time.Second)
	op := regexp.MustCompile(`deliverAt: "[^"]+"`).ReplaceAllString(m[1], `deliverAt: "`+at.Format(time.RFC3339)+`"`)
	if op == m[1] {
		t.Fatalf("the example sets no deliverAt:\n%s", m[1])
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
