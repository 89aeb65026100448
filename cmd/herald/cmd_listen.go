package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/client"
)

// listenFlags are herald listen's settings.
type listenFlags struct {
	forwardTo  string
	events     []string
	filter     string
	ttl        time.Duration
	ordering   string
	rateLimit  string
	timeout    time.Duration
	listener   string
	fresh      bool
	skipVerify bool
	heartbeat  time.Duration
}

func (c *cli) listenCmd() *cobra.Command {
	var f listenFlags
	cmd := &cobra.Command{
		Use:   "listen --forward-to URL [flags]",
		Short: "Receive the app's events on this machine: forward them to a local URL",
		Long: `Open a listener, a temporary endpoint of the app delivered over this
session instead of HTTP, and forward each of its deliveries to a local URL
with Herald's headers and a valid signature (verify them with the signing
secret printed first). The local answer is reported back: the attempt is
recorded with its status and body like any other, and failures are retried
by Herald with the listener's retry policy.

If herald listen stops or loses its connection (network, sleep, Ctrl-C),
deliveries wait for it, in order, without using attempts: the listener lives
for its TTL (default 24h) after its last connection. Run the same command
again to catch up; it resumes the listener it opened for the same settings
(--new opens another). A silent connection is found dead within 20 seconds,
and herald listen reconnects by itself.

One line per forwarded delivery: time, event type, event ID, local status
and latency. With --json, one JSON object per line instead (the first one
describes the listener and its secret).`,
		Example: `  herald listen --forward-to http://localhost:3000/webhooks
  herald listen --forward-to http://localhost:3000/webhooks --events 'order.*' --events invoice.paid
  herald listen --forward-to http://localhost:3000/webhooks --filter '{"data.total": {"$gte": 1000}}' --ordering strict`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.listen(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.forwardTo, "forward-to", "", "the local URL to forward deliveries to, such as http://localhost:3000/webhooks (required)")
	fl.StringSliceVarP(&f.events, "events", "e", nil, "event types to receive: a name, a pattern such as order.*, or * (repeat or separate with commas; default *)")
	fl.StringVar(&f.filter, "filter", "", "forward only events whose envelope matches this payload filter (JSON or @file)")
	fl.DurationVar(&f.ttl, "ttl", 0, "how long the listener waits for you after you disconnect, 1m-168h (default 24h)")
	fl.StringVar(&f.ordering, "ordering", "", "NONE (default: one at a time, as they fall due), KEY or STRICT")
	fl.StringVar(&f.rateLimit, "rate-limit", "", "at most this many deliveries per window, such as 10/1s")
	fl.DurationVar(&f.timeout, "timeout", 0, "time limit of the local request, 100ms-30s (default 10s)")
	fl.StringVar(&f.listener, "listener", "", "hold this listener (its ID) instead of the one saved for these settings")
	fl.BoolVar(&f.fresh, "new", false, "open a new listener even if one was saved for these settings")
	fl.BoolVar(&f.skipVerify, "skip-verify", false, "do not verify the TLS certificate of an https --forward-to URL (self-signed development certificates)")
	fl.DurationVar(&f.heartbeat, "heartbeat", 10*time.Second, "ping the server this often; a connection silent for two heartbeats is dropped and reopened")
	_ = cmd.RegisterFlagCompletionFunc("events", c.completeEventTypes)
	_ = cmd.RegisterFlagCompletionFunc("ordering", cobra.FixedCompletions([]cobra.Completion{"NONE", "KEY", "STRICT"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("listener", c.completeEndpoints)
	return cmd
}

// listen runs herald listen until Ctrl-C or a final error.
func (c *cli) listen(ctx context.Context, f listenFlags) error {
	target, err := checkForwardTo(f.forwardTo)
	if err != nil {
		return err
	}
	in, err := c.listenerInput(f, target)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := &listenOutput{c: c, target: target}
	cl, err := c.client(client.LiveConfig{Heartbeat: f.heartbeat, OnStatus: out.status})
	if err != nil {
		return err
	}
	conn, err := c.connection()
	if err != nil {
		return err
	}
	ep, secret, resumed, err := c.openListener(ctx, cl, conn, f, in)
	if err != nil {
		return err
	}
	out.listener = ep
	out.header(ep, secret, resumed)
	fw := newForwarder(target, f.skipVerify)
	err = cl.Listen(ctx, ep.ID, client.ListenHandler{
		Connected: out.connected,
		Forward:   fw.forward,
		Reported:  out.forwarded,
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	out.stopped()
	return nil
}

// checkForwardTo checks --forward-to: an absolute http(s) URL.
func checkForwardTo(s string) (*url.URL, error) {
	if s == "" {
		return nil, usageErrorf("--forward-to is required: the local URL that receives the events, such as http://localhost:3000/webhooks")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageErrorf("--forward-to %q: want an http(s) URL such as http://localhost:3000/webhooks", s)
	}
	return u, nil
}

// listenerInput is the listener f describes.
func (c *cli) listenerInput(f listenFlags, target *url.URL) (client.CreateListenerInput, error) {
	in := client.CreateListenerInput{EventTypes: f.events, ForwardTo: client.Ptr(target.String())}
	if len(in.EventTypes) == 0 {
		in.EventTypes = []string{"*"}
	}
	if f.filter != "" {
		raw, err := readData("--filter", f.filter, c.stdin)
		if err != nil {
			return in, err
		}
		var b bytes.Buffer
		_ = json.Compact(&b, raw)
		raw = b.Bytes()
		in.Filter = &raw
	}
	if f.ttl != 0 {
		in.Ttl = client.Ptr(f.ttl.String())
	}
	if f.ordering != "" {
		o := client.Ordering(strings.ToUpper(f.ordering))
		in.Ordering = &o
	}
	if f.rateLimit != "" {
		rl, err := parseRateLimit(f.rateLimit)
		if err != nil {
			return in, err
		}
		in.RateLimit = rl
	}
	if f.timeout != 0 {
		in.Timeout = client.Ptr(f.timeout.String())
	}
	return in, nil
}

// openListener resumes the listener --listener names, or the one saved
// for these settings, or opens a new one (and saves it). It returns the
// listener with its signing secret.
func (c *cli) openListener(ctx context.Context, cl *client.Client, conn savedConfig, f listenFlags, in client.CreateListenerInput) (*client.Endpoint, string, bool, error) {
	key := listenerKey(conn, in)
	saved, path, err := c.loadListeners()
	if err != nil {
		return nil, "", false, err
	}
	id := f.listener
	if id == "" && !f.fresh {
		id = saved[key]
	}
	if id != "" {
		ep, err := cl.Endpoint(ctx, id)
		switch {
		case client.IsCode(err, client.CodeNotFound) && f.listener == "":
			// Expired or deleted: open another below.
		case err != nil:
			return nil, "", false, err
		case ep.Listener == nil:
			return nil, "", false, usageErrorf("--listener %s is a %s endpoint, not a listener: herald listen opens one", id, ep.Type)
		default:
			if !ep.IsActive {
				why := ""
				if ep.DisabledReason != nil {
					why = " (" + *ep.DisabledReason + ")"
				}
				c.note("Listener %s was off%s: turning it back on.", ep.ID, why)
				if ep, err = cl.EnableEndpoint(ctx, ep.ID); err != nil {
					return nil, "", false, err
				}
			}
			secret, err := cl.RevealEndpointSecret(ctx, ep.ID)
			if err != nil {
				return nil, "", false, err
			}
			return ep, secret, true, nil
		}
	}
	ep, secret, err := cl.CreateListener(ctx, in)
	if err != nil {
		return nil, "", false, err
	}
	saved[key] = ep.ID
	if err := saveListeners(path, saved); err != nil {
		c.note("The listener is not saved for the next run (%v): resume it with --listener %s.", err, ep.ID)
	}
	return ep, secret, false, nil
}

// listenerKey names a listener's settings on one server and app: the same
// command resumes the same listener.
func listenerKey(conn savedConfig, in client.CreateListenerInput) string {
	types := slices.Clone(in.EventTypes)
	slices.Sort(types)
	b, _ := json.Marshal([]any{strings.TrimRight(conn.URL, "/"), conn.App, types, in.Filter, in.Ttl, in.Ordering, in.RateLimit, in.Timeout})
	return string(b)
}

// listenersPath is where herald listen saves its listeners: listeners.json
// beside the config file.
func (c *cli) listenersPath() (string, error) {
	p, err := c.configPath()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(p), "listeners.json"), nil
}

// loadListeners reads the saved listeners, by settings; a missing or
// unreadable file is none.
func (c *cli) loadListeners() (map[string]string, string, error) {
	path, err := c.listenersPath()
	if err != nil {
		return nil, "", err
	}
	saved := map[string]string{}
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > 0 {
		_ = json.Unmarshal(b, &saved) // a damaged file is rewritten
	}
	return saved, path, nil
}

// saveListeners writes the saved listeners readable by the user only.
func saveListeners(path string, saved map[string]string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(saved, "", "  ")
	tmp, err := os.CreateTemp(filepath.Dir(path), ".listeners-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// forwarder sends deliveries to the local URL.
type forwarder struct {
	target *url.URL
	hc     *http.Client
}

// maxLocalBody is how much of a local answer is read and reported.
const maxLocalBody = 64 << 10

func newForwarder(target *url.URL, skipVerify bool) *forwarder {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if skipVerify {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for, for development certificates
	}
	return &forwarder{target: target, hc: &http.Client{
		Transport: tr,
		// The local answer is reported as it is, redirects included.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// forward posts a delivery to the local URL, with Herald's headers, within
// its timeout.
func (f *forwarder) forward(ctx context.Context, d *client.ListenerDelivery) client.ListenerResult {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.target.String(), bytes.NewReader(d.Body))
	if err != nil {
		return client.ListenerResult{Err: err}
	}
	for name, vs := range d.Header {
		req.Header[name] = vs
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		res := client.ListenerResult{Duration: time.Since(start), Err: localError(err, timeout)}
		return res
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxLocalBody))
	return client.ListenerResult{Status: resp.StatusCode, Header: resp.Header, Body: body, Duration: time.Since(start)}
}

// localError says in a few words why the local URL did not answer.
func localError(err error, timeout time.Duration) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("timeout: no answer within %s", timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return errors.New("connection refused: is your server running?")
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// listenOutput prints a listen session for people, or as JSON lines.
type listenOutput struct {
	c        *cli
	target   *url.URL
	listener *client.Endpoint
	mu       sync.Mutex
}

func (o *listenOutput) json(v map[string]any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	b, _ := json.Marshal(v)
	fmt.Fprintln(o.c.stdout, string(b))
}

func (o *listenOutput) line(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.c.stdout, format+"\n", args...)
}

// note tells a person something on stderr (skipped with --json).
func (c *cli) note(format string, args ...any) {
	if !c.json {
		fmt.Fprintf(c.stderr, format+"\n", args...)
	}
}

// header describes the listener and its secret.
func (o *listenOutput) header(ep *client.Endpoint, secret string, resumed bool) {
	if o.c.json {
		o.json(map[string]any{"listener": ep, "secret": secret, "resumed": resumed, "forwardTo": o.target.String()})
		return
	}
	verb, ttl := "Opened", "24h"
	if resumed {
		verb = "Resumed"
	}
	if ep.Listener != nil {
		ttl = strings.TrimSuffix(strings.TrimSuffix(ep.Listener.TTL, "0s"), "0m")
	}
	o.line("%s listener %s for %s (it waits %s for you after you disconnect).", verb, ep.ID, strings.Join(ep.EventTypes, ", "), ttl)
	o.line("Signing secret: %s", secret)
	o.line("Forwarding to %s (Ctrl-C stops; deliveries wait for the next herald listen).", o.target)
}

// status reports the connection's changes (stderr, as herald tail does).
func (o *listenOutput) status(s client.LiveStatus) {
	if s.State != client.LiveDisconnected {
		return // a session's start is told by connected
	}
	if o.c.json {
		o.json(map[string]any{"status": "disconnected", "error": errString(s.Err), "retryInMs": s.RetryIn.Milliseconds()})
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.c.stderr, "disconnected: %v; reconnecting in %s (deliveries wait)\n", s.Err, s.RetryIn.Round(100*time.Millisecond))
}

// connected reports a session that began, with what it catches up on.
func (o *listenOutput) connected(waiting int) {
	if o.c.json {
		o.json(map[string]any{"status": "connected", "waiting": waiting})
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	switch waiting {
	case 0:
		fmt.Fprintln(o.c.stderr, "connected")
	case 1:
		fmt.Fprintln(o.c.stderr, "connected: catching up on 1 waiting delivery")
	default:
		fmt.Fprintf(o.c.stderr, "connected: catching up on %d waiting deliveries\n", waiting)
	}
}

// forwarded prints one forwarded delivery: time, type, event, local status
// and latency.
func (o *listenOutput) forwarded(d *client.ListenerDelivery, r client.ListenerResult, reportErr error) {
	if o.c.json {
		v := map[string]any{"time": time.Now().UTC().Format(time.RFC3339Nano), "deliveryId": d.DeliveryID, "eventId": d.EventID, "eventType": d.EventType,
			"attempt": d.Attempt, "status": r.Status, "durationMs": r.Duration.Milliseconds()}
		if r.Err != nil {
			v["error"] = r.Err.Error()
		}
		if reportErr != nil {
			v["reportError"] = reportErr.Error()
		}
		o.json(v)
		return
	}
	result := fmt.Sprintf("%d %s", r.Status, http.StatusText(r.Status))
	if r.Status == 0 {
		result = "error: " + errString(r.Err)
	}
	var notes []string
	if d.Attempt > 1 {
		notes = append(notes, fmt.Sprintf("attempt %d", d.Attempt))
	}
	if r.Status < 200 || r.Status >= 300 {
		notes = append(notes, "Herald retries failures with the listener's retry policy")
	}
	if reportErr != nil {
		notes = append(notes, "not reported: "+reportErr.Error()+"; Herald sends it again")
	}
	line := fmt.Sprintf("%s  %-16s  %s  → %s  %s", time.Now().Format("15:04:05"), d.EventType, d.EventID, result, fmtLatency(r.Duration))
	if len(notes) > 0 {
		line += "  (" + strings.Join(notes, "; ") + ")"
	}
	o.line("%s", line)
}

func fmtLatency(d time.Duration) string {
	if d < time.Millisecond {
		return "<1ms"
	}
	if d < time.Second {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return d.Round(10 * time.Millisecond).String()
}

// stopped says what happens to deliveries once herald listen stops.
func (o *listenOutput) stopped() {
	if o.c.json || o.listener == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.c.stderr, "Stopped. Deliveries to %s wait for the next herald listen with the same settings.\n", o.listener.ID)
}
