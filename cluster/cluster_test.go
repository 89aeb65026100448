package cluster

import (
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/heraldhq/herald/pgnotify"
)

// receiveAll decodes messages as a replica's listener hands them over.
func receiveAll(t *testing.T, msgs ...string) (got []string) {
	t.Helper()
	c := &Cluster{cfg: Config{Handlers: Handlers{
		Wake:       func(ids []string) { got = append(got, "wake "+join(ids)) },
		Endpoint:   func(ch EndpointChange, app, id string) { got = append(got, "endpoint "+string(ch)+" app="+app+" "+id) },
		KeyRevoked: func(id string) { got = append(got, "key "+id) },
		Catalog:    func(app string) { got = append(got, "catalog "+app) },
		Listener:   func(id, session string) { got = append(got, "listener "+id+" "+session) },
	}}}
	c.log = discard()
	for _, m := range msgs {
		c.receive(pgnotify.Notification{Channel: Channel, Sender: "other", Payload: m})
	}
	return got
}

func join(ids []string) string {
	s := ""
	for i, id := range ids {
		if i > 0 {
			s += ","
		}
		s += id
	}
	return s
}

func TestReceive_DecodesEachNotice(t *testing.T) {
	got := receiveAll(t, "w ep_1 ep_2", "e d - ep_1", "e c app_1 ep_2", "k key_1", "c app_1", "l ep_3 s1", "x unknown")
	want := []string{"wake ep_1,ep_2", "endpoint d app= ep_1", "endpoint c app=app_1 ep_2", "key key_1", "catalog app_1", "listener ep_3 s1"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// A notice about an endpoint whose app the sender did not know must still
// reach the others (it once lost a field to a double space).
func TestEndpoint_WithoutAppIsReceived(t *testing.T) {
	var sent []string
	c := &Cluster{log: discard()}
	c.sendFunc = func(msg string) { sent = append(sent, msg) }
	c.Endpoint(EndpointDisabled, "", "ep_1")
	c.Wake(repeated("ep", 150)...)
	c.ListenerAttached("ep_2", "s1")
	got := receiveAll(t, sent...)
	if len(got) != 4 || got[0] != "endpoint d app= ep_1" || got[3] != "listener ep_2 s1" {
		t.Fatalf("received %q", got)
	}
}

func repeated(id string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = id
	}
	return ids
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
