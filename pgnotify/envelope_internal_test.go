package pgnotify

import (
	"fmt"
	"strings"
	"testing"
)

func TestPack_FillsNotificationsUpToTheLimitInOrder(t *testing.T) {
	p := packer{replica: "r1", seq: make(map[string]uint64)}
	var msgs []Message
	for i := range 500 {
		c := "a"
		if i%3 == 0 {
			c = "b"
		}
		msgs = append(msgs, Message{Channel: c, Payload: fmt.Sprintf("%d:%s", i, strings.Repeat("x", i%200))})
	}
	msgs = append(msgs, Message{Channel: "a", Payload: strings.Repeat("y", MaxMessage)}, Message{Channel: "a", Payload: ""})
	channels, payloads := p.pack(msgs, nil, true)
	got := make(map[string][]string)
	last := make(map[string]uint64)
	for i, pl := range payloads {
		if len(pl) > MaxPayload {
			t.Fatalf("payload %d is %d bytes", i, len(pl))
		}
		e, err := parseEnvelope(pl)
		if err != nil {
			t.Fatalf("payload %d: %v", i, err)
		}
		if e.replica != "r1" || e.seq != last[channels[i]]+1 {
			t.Fatalf("payload %d: replica %q seq %d after %d", i, e.replica, e.seq, last[channels[i]])
		}
		last[channels[i]] = e.seq
		got[channels[i]] = append(got[channels[i]], e.messages...)
	}
	var want = make(map[string][]string)
	for _, m := range msgs {
		want[m.Channel] = append(want[m.Channel], m.Payload)
	}
	for c := range want {
		if strings.Join(got[c], "|") != strings.Join(want[c], "|") {
			t.Errorf("channel %s: messages differ after packing", c)
		}
	}
	if len(payloads) > 12 {
		t.Errorf("%d messages took %d notifications", len(msgs), len(payloads))
	}
}

func TestPack_SkipsANumberWhereMessagesWereDropped(t *testing.T) {
	p := packer{replica: "r1", seq: make(map[string]uint64)}
	p.pack([]Message{{Channel: "a", Payload: "1"}}, nil, true)
	skip := map[string]bool{"a": true, "b": true}
	_, payloads := p.pack([]Message{{Channel: "a", Payload: "2"}}, skip, true)
	e, _ := parseEnvelope(payloads[0])
	if e.seq != 3 {
		t.Errorf("seq after a drop = %d, want 3", e.seq)
	}
	if !skip["b"] || skip["a"] {
		t.Errorf("skips left = %v, want b only (it sent nothing yet)", skip)
	}
}

func TestParseEnvelope_RejectsForeignPayloads(t *testing.T) {
	for _, s := range []string{"", "hello", "1 r\n", "2 r 1\n", "1 r x\n", "1 r 1\n5:abc", "1 r 1\nabc"} {
		if _, err := parseEnvelope(s); err == nil {
			t.Errorf("parseEnvelope(%q) succeeded", s)
		}
	}
}

func TestMessage_RejectsWhatPostgreSQLWould(t *testing.T) {
	for _, m := range []Message{
		{Channel: "", Payload: "x"},
		{Channel: "Herald", Payload: "x"},
		{Channel: "herald live", Payload: "x"},
		{Channel: strings.Repeat("a", 64), Payload: "x"},
		{Channel: "herald", Payload: "a\x00b"},
		{Channel: "herald", Payload: "\xff"},
		{Channel: "herald", Payload: strings.Repeat("x", MaxMessage+1)},
	} {
		if m.check() == nil {
			t.Errorf("check(%q, %.20q) accepted it", m.Channel, m.Payload)
		}
	}
}
