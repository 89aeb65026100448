package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The receiver runs in its own process (`herald-bench receiver`) so that
// its CPU shows up separately from Herald's. It answers webhooks as fast as
// it can, stamps each arrival against the publish time the event carries
// ("sentAt", Unix nanoseconds, in the payload), and reports counts and
// latency percentiles on GET /stats.

// receiverStats is what GET /stats returns.
type receiverStats struct {
	Requests int64 `json:"requests"`
	// Unique counts distinct webhook-ids that were answered 2xx.
	Unique   int64          `json:"unique"`
	Failed   int64          `json:"failed"`
	Latency  latencySummary `json:"latency"`
	Samples  int            `json:"samples"`
	FirstAt  time.Time      `json:"firstAt"`
	LastAt   time.Time      `json:"lastAt"`
	FailRate float64        `json:"failRate"`
}

// latencySummary holds percentiles in milliseconds.
type latencySummary struct {
	P50 float64 `json:"p50Ms"`
	P95 float64 `json:"p95Ms"`
	P99 float64 `json:"p99Ms"`
	Max float64 `json:"maxMs"`
}

func summarize(samples []time.Duration) latencySummary {
	if len(samples) == 0 {
		return latencySummary{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	at := func(q float64) float64 {
		i := int(q * float64(len(s)-1))
		return float64(s[i]) / float64(time.Millisecond)
	}
	return latencySummary{P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: float64(s[len(s)-1]) / float64(time.Millisecond)}
}

type receiver struct {
	failRate float64

	mu       sync.Mutex
	requests int64
	failed   int64
	ok       map[string]struct{}
	lat      []time.Duration
	first    time.Time
	last     time.Time
}

var sentAtKey = []byte(`"sentAt":`)

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/stats":
		rc.mu.Lock()
		st := receiverStats{Requests: rc.requests, Unique: int64(len(rc.ok)), Failed: rc.failed,
			Latency: summarize(rc.lat), Samples: len(rc.lat), FirstAt: rc.first, LastAt: rc.last, FailRate: rc.failRate}
		rc.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
		return
	case "/reset":
		rc.mu.Lock()
		rc.requests, rc.failed, rc.ok, rc.lat, rc.first, rc.last = 0, 0, map[string]struct{}{}, nil, time.Time{}, time.Time{}
		if v := r.URL.Query().Get("failRate"); v != "" {
			rc.failRate, _ = strconv.ParseFloat(v, 64)
		}
		rc.mu.Unlock()
		return
	}
	now := time.Now()
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get("Webhook-Id")
	fail := rc.failRate > 0 && r.Header.Get("X-Herald-Attempt") == "1" && hashFraction(id) < rc.failRate
	var lat time.Duration
	if i := bytes.Index(body, sentAtKey); i >= 0 {
		rest := body[i+len(sentAtKey):]
		j := bytes.IndexAny(rest, ",}")
		if j > 0 {
			if ns, err := strconv.ParseInt(string(rest[:j]), 10, 64); err == nil {
				lat = now.Sub(time.Unix(0, ns))
			}
		}
	}
	rc.mu.Lock()
	rc.requests++
	if rc.first.IsZero() {
		rc.first = now
	}
	rc.last = now
	if fail {
		rc.failed++
	} else {
		if _, seen := rc.ok[id]; !seen && lat > 0 && r.Header.Get("X-Herald-Attempt") == "1" {
			rc.lat = append(rc.lat, lat)
		}
		rc.ok[id] = struct{}{}
	}
	rc.mu.Unlock()
	if fail {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// hashFraction maps an ID to [0, 1), so the same events fail on every run.
func hashFraction(id string) float64 {
	h := fnv.New32a()
	h.Write([]byte(id))
	return float64(h.Sum32()%10000) / 10000
}

// runReceiver is the `herald-bench receiver` subcommand. It prints its
// address on the first line of stdout.
func runReceiver(args []string) error {
	fs := flag.NewFlagSet("herald-bench receiver", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	rc := &receiver{ok: map[string]struct{}{}}
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		return err
	}
	return nil
}
