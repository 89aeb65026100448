package transform_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/transform"
)

const envelope = `{"id":"evt_1","type":"order.created","timestamp":"2026-01-02T03:04:05Z","data":{"total":1250,"currency":"EUR"}}`

func run(t *testing.T, script string, in transform.Input) (transform.Output, error) {
	t.Helper()
	e := transform.New(transform.Limits{})
	p, err := e.Compile(script)
	if err != nil {
		return transform.Output{}, err
	}
	if in.Body == nil {
		in.Body = []byte(envelope)
	}
	return p.Run(in)
}

func TestRun_ReshapesThePayloadAndAddsHeaders(t *testing.T) {
	out, err := run(t, `function handler(webhook) {
  const d = webhook.payload.data;
  webhook.payload = {text: "Order of " + (d.total / 100) + " " + d.currency};
  webhook.headers["X-Source"] = "herald";
  return webhook;
}`, transform.Input{EventType: "order.created"})
	if err != nil {
		t.Fatal(err)
	}
	if string(out.Body) != `{"text":"Order of 12.5 EUR"}` || len(out.Headers) != 1 || out.Headers[0].Name != "X-Source" || out.Headers[0].Value != "herald" {
		t.Fatalf("output = %s, %+v", out.Body, out.Headers)
	}
}

func TestRun_ChangesMethodAndURLOfHTTPEndpoints(t *testing.T) {
	out, err := run(t, `function handler(w) { w.url = w.url + "/" + w.eventType; w.method = "put"; return w }`,
		transform.Input{EventType: "order.created", HTTP: true, Method: "POST", URL: "https://example.com/hooks"})
	if err != nil {
		t.Fatal(err)
	}
	if out.URL != "https://example.com/hooks/order.created" || out.Method != "PUT" || string(out.Body) != envelope {
		t.Fatalf("output = %+v", out)
	}
}

func TestRun_NullSkipsTheEvent(t *testing.T) {
	out, err := run(t, `function handler(w) { return w.payload.data.total < 1000 ? w : null }`, transform.Input{})
	if err != nil || !out.Skip {
		t.Fatalf("output = %+v, %v; want skipped", out, err)
	}
}

func TestRun_ErrorsSayWhereWithLineAndColumn(t *testing.T) {
	tests := []struct {
		name, script, want string
		line, col          int
	}{
		{"syntax", "function handler(w) {\n  return w.;\n}", "SyntaxError", 2, 12},
		{"throw", "function handler(w) {\n  const x = w.payload.nope;\n  return x.deeper;\n}", "TypeError", 3, 12},
		{"infinite loop", "function handler(w) {\n  let n = 0;\n  while (true) { n++ }\n}", "time budget exceeded", 3, 0},
		{"no handler", "function handle(w) { return w } // handler missing", "does not define function handler", 0, 0},
		{"undefined", "function handler(w) { }", "returned undefined", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := run(t, tt.script, transform.Input{})
			var te *transform.Error
			if !errors.As(err, &te) || !strings.Contains(te.Message, tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if tt.line != 0 && (te.Line != tt.line || (tt.col != 0 && te.Column != tt.col)) {
				t.Errorf("position = %d:%d, want %d:%d (%v)", te.Line, te.Column, tt.line, tt.col, err)
			}
		})
	}
}

func TestRun_HundredMegabyteAllocationsAreStopped(t *testing.T) {
	for name, script := range map[string]string{
		"repeat":       `function handler(w) { w.payload = "x".repeat(100 * 1024 * 1024); return w }`,
		"array":        `function handler(w) { const a = new Array(100 * 1024 * 1024).fill(1); return w }`,
		"buffer":       `function handler(w) { const b = new Uint8Array(100 * 1024 * 1024); return w }`,
		"growing loop": `function handler(w) { const parts = []; for (;;) parts.push("y".repeat(1 << 20) + parts.length); }`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := run(t, script, transform.Input{})
			var te *transform.Error
			if !errors.As(err, &te) || !(strings.Contains(te.Message, "memory limit") || strings.Contains(te.Message, "time budget")) {
				t.Fatalf("err = %v, want the script stopped by its memory limit or time budget", err)
			}
			if te.Line == 0 {
				t.Errorf("error %v does not say where", err)
			}
		})
	}
}

// sink keeps the garbage of TestRun_WhatTheRestOfTheProcessAllocatesIsNotCharged
// on the heap.
var sink []byte

// TestRun_WhatTheRestOfTheProcessAllocatesIsNotCharged runs a script that
// allocates nothing while the rest of the process churns garbage, as a
// busy server does: the script is stopped by its time budget, not by a
// memory budget charged with what others allocated.
func TestRun_WhatTheRestOfTheProcessAllocatesIsNotCharged(t *testing.T) {
	// Long enough for the churn to pass twice the budget on a loaded
	// machine (a CI run churned 68 MiB in 300 ms).
	e := transform.New(transform.Limits{Timeout: 2 * time.Second})
	p, err := e.Compile("function handler(w) {\n  let n = 0;\n  while (n < 1) { n = 0 }\n}")
	if err != nil {
		t.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	var churned atomic.Int64
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			sink = make([]byte, 1<<20)
			churned.Add(1 << 20)
		}
	}()
	_, err = p.Run(transform.Input{Body: []byte(envelope)})
	close(stop)
	<-done
	var te *transform.Error
	if !errors.As(err, &te) || !strings.Contains(te.Message, "time budget exceeded") {
		t.Fatalf("err = %v, want the time budget exceeded (the script allocates nothing; the process allocated %d MiB meanwhile)", err, churned.Load()>>20)
	}
	if churned.Load() < 2*64<<20 {
		t.Fatalf("the process allocated %d MiB during the run; this test needs more than twice the memory budget (64 MiB)", churned.Load()>>20)
	}
}

func TestRun_ScriptsDoNotShareGlobals(t *testing.T) {
	e := transform.New(transform.Limits{})
	a, err := e.Compile(`function handler(w) { globalThis.secret = "app A's"; return w }`)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Compile(`function handler(w) { w.payload = {seen: typeof secret}; return w }`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Run(transform.Input{Body: []byte(envelope)}); err != nil {
		t.Fatal(err)
	}
	out, err := b.Run(transform.Input{Body: []byte(envelope)})
	if err != nil || string(out.Body) != `{"seen":"undefined"}` {
		t.Fatalf("output = %s, %v; one script saw another's global", out.Body, err)
	}
}

func TestRun_NoIOTimersOrModules(t *testing.T) {
	out, err := run(t, `function handler(w) { w.payload = [typeof require, typeof setTimeout, typeof fetch, typeof XMLHttpRequest, typeof process].join(","); return w }`, transform.Input{})
	if err != nil || string(out.Body) != "undefined,undefined,undefined,undefined,undefined" {
		t.Fatalf("output = %s, %v", out.Body, err)
	}
}

// BenchmarkRun_Trivial is what a trivial transformation costs a delivery.
func BenchmarkRun_Trivial(b *testing.B) {
	e := transform.New(transform.Limits{})
	p, err := e.Compile(`function handler(w) { w.headers["X-Env"] = "prod"; return w }`)
	if err != nil {
		b.Fatal(err)
	}
	in := transform.Input{EventType: "order.created", Body: []byte(envelope)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Run(in); err != nil {
			b.Fatal(err)
		}
	}
}
