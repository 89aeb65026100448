package dispatch

import (
	"encoding/json"
	"fmt"
	"github.com/heraldhq/herald/destination"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/webhook"
)

// recHarness runs a recorder over a fake driver.
type recHarness struct {
	r         *recorder
	d         *fakeDriver
	mu        sync.Mutex
	committed []*result
	released  []*job
}

func newRecHarness(t *testing.T, opts ...func(*recorderConfig)) *recHarness {
	clock := newFakeClock()
	h := &recHarness{d: newFakeDriver()}
	cfg := recorderConfig{Now: clock.Now, Rand: func() float64 { return 0.5 }, Outstanding: func() int { return 0 }}
	for _, o := range opts {
		o(&cfg)
	}
	h.r = newRecorder(cfg, h.d, discardLogger(), 1024)
	h.r.committed = func(out *commitOutput) {
		h.mu.Lock()
		h.committed = append(h.committed, out.results...)
		h.mu.Unlock()
	}
	h.r.released = func(jobs []*job) {
		h.mu.Lock()
		h.released = append(h.released, jobs...)
		h.mu.Unlock()
	}
	go h.r.run()
	t.Cleanup(func() {
		close(h.r.in)
		<-h.r.done
	})
	return h
}

func (h *recHarness) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.committed)
}

func successResult(id string) *result {
	now := time.Now()
	cfg := &endpointConfig{ID: "ep_1", URL: "https://example.com", Retry: webhook.DefaultRetryPolicy()}
	return &result{
		job: &job{Job: Job{Lease: Lease{DeliveryID: id, EndpointID: "ep_1"}, AppID: "app_1"}, trigger: "SCHEDULED", counted: true,
			attempt: attempt{DeliveryID: id, Number: 1, Endpoint: cfg}},
		resp: &destination.Result{Outcome: destination.Delivered, Status: 200, Started: now, Completed: now, ResponseBody: "ok"},
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A database that refuses commits for a while loses no result and records
// none twice; the recorder says it cannot commit meanwhile.
func TestRecorder_KeepsResultsWhileCommitsFail(t *testing.T) {
	h := newRecHarness(t)
	h.d.mu.Lock()
	h.d.failCommits = 5
	h.d.mu.Unlock()
	for i := range 100 {
		h.r.in <- successResult(fmt.Sprintf("dlv_%03d", i))
	}
	waitFor(t, "the recorder to notice the failures", func() bool { return !h.r.canCommit() })
	waitFor(t, "every result to be committed", func() bool { return h.count() == 100 })
	h.d.mu.Lock()
	attempts, commits := h.d.attempts, h.d.commits
	h.d.mu.Unlock()
	if attempts != 100 {
		t.Fatalf("%d results recorded, want 100 (each once)", attempts)
	}
	if !h.r.canCommit() {
		t.Fatal("the recorder still says it cannot commit after committing")
	}
	if commits < 6 {
		t.Fatalf("%d commits for 5 failures, want retries", commits)
	}
	if len(h.released) != 0 {
		t.Fatalf("%d results dropped and released", len(h.released))
	}
}

// A result the store refuses on its own is isolated: the others of its
// batch are committed, and it is stored degraded (no response body) after
// failing degradeAfter times.
func TestRecorder_IsolatesAPoisonResult(t *testing.T) {
	h := newRecHarness(t)
	h.d.mu.Lock()
	h.d.poison["dlv_poison"] = true
	h.d.mu.Unlock()
	h.r.in <- successResult("dlv_a")
	h.r.in <- successResult("dlv_poison")
	h.r.in <- successResult("dlv_b")
	waitFor(t, "the healthy results", func() bool { return h.count() == 2 })
	if !h.r.canCommit() {
		t.Fatal("one poison result made the recorder report that it cannot commit")
	}
	// The fake refuses the delivery whatever its body: it stays pending,
	// retried, and never blocks the results that follow.
	h.r.in <- successResult("dlv_c")
	waitFor(t, "a later result", func() bool { return h.count() == 3 })
}

func TestAttemptRow_DegradedDropsTheResponse(t *testing.T) {
	res := successResult("dlv_1")
	res.resp.ResponseHeaders = []webhook.Header{{Name: "X", Value: "y"}}
	row := attemptRow(res.job, res.resp, true, fmt.Errorf("invalid byte sequence"))
	var hs []webhook.Header
	if err := json.Unmarshal(row.ResponseHeaders, &hs); err != nil || len(hs) != 0 || row.ResponseBody != "" || !row.Truncated {
		t.Fatalf("degraded row = %+v", row)
	}
	if row.Error != "response not stored: the database refused it (invalid byte sequence)" {
		t.Fatalf("error = %q", row.Error)
	}
}

// At a steady rate a lone result waits for others to share its commit,
// but never one that something waits on: a synchronous test send or an
// event whose ordering key's next event waits for it, and none while the
// window is nearly full.
func TestRecorder_LoneResultsShareACommitUnlessAwaited(t *testing.T) {
	free := 1000
	var mu sync.Mutex
	h := newRecHarness(t, func(c *recorderConfig) {
		c.Linger = time.Hour // longer than the test: only what is awaited commits
		c.Free = func() int {
			mu.Lock()
			defer mu.Unlock()
			return free
		}
	})
	commits := func() int {
		h.d.mu.Lock()
		defer h.d.mu.Unlock()
		return h.d.commits
	}

	h.r.in <- successResult("dlv_a")
	time.Sleep(10 * time.Millisecond)
	h.r.in <- successResult("dlv_b")
	time.Sleep(50 * time.Millisecond)
	if n := h.count(); n != 0 {
		t.Fatalf("%d lone results committed at once, want them held for a shared commit", n)
	}

	test := successResult("dlv_test")
	test.done = make(chan recorded, 1)
	h.r.in <- test
	waitFor(t, "a synchronous test send's result", func() bool { return h.count() == 3 })
	if n, c := h.count(), commits(); n != 3 || c != 1 {
		t.Fatalf("%d results in %d commits, want the held two to share the test send's commit", n, c)
	}

	ordered := successResult("dlv_ordered")
	ordered.job.OrderingKey = "customer-1"
	h.r.in <- ordered
	waitFor(t, "an ordered event's result", func() bool { return h.count() == 4 })

	mu.Lock()
	free = minSteadyRoom - 1
	mu.Unlock()
	h.r.in <- successResult("dlv_crowded")
	waitFor(t, "a result while the window is nearly full", func() bool { return h.count() == 5 })
}
