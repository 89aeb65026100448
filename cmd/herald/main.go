// Command herald is Herald's one binary: the webhook delivery server and
// the command-line client of its API.
//
// Usage:
//
//	herald serve [flags]     start the server
//	herald receive [flags]   run a webhook receiver that prints and verifies deliveries
//	herald migrate status|up show or apply the database's pending migrations
//	herald backup --out FILE copy a SQLite database while herald serves it
//	herald login             store a server URL and API key for the commands below
//	herald publish TYPE      publish an event (and trigger, endpoints, events,
//	                         deliveries, replay, tail, portal-link, catalog)
//	herald version           print the version
//
// Run `herald help` for the whole list and `herald help COMMAND` for one
// command. Every flag of serve can also be set with an environment
// variable: --db is HERALD_DB, --allow-http is HERALD_ALLOW_HTTP, and so
// on; flags win over the environment. See docs/cli.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/heraldhq/herald/examples"
	"github.com/heraldhq/herald/secret"
	"github.com/heraldhq/herald/server"
	"github.com/heraldhq/herald/tracing"
)

func main() {
	os.Exit(execute(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// execute runs herald, reports its error on stderr and returns the exit
// code.
func execute(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	err := runWith(ctx, args, stdin, stdout, stderr, getenv)
	if err != nil {
		asJSON := slices.Contains(args, "--json") || slices.Contains(args, "--json=true")
		reportError(stderr, err, asJSON)
	}
	return exitCode(err)
}

// options are the command-line settings of `herald serve`.
type options struct {
	cfg       server.Config
	dev       bool
	catalog   string
	logFormat string
	logLevel  string
	// memoryLimit is --memory-limit (see setMemoryLimit).
	memoryLimit string
	// procs is --procs (see adaptProcs).
	procs   string
	cors    string
	metrics bool
	migrate bool
}

// parseFlags reads flags, falling back to HERALD_* environment variables.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("herald serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, def string) string {
		if v := getenv("HERALD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))); v != "" {
			return v
		}
		return def
	}
	var errs []error
	str := func(p *string, name, def, usage string) {
		fs.StringVar(p, name, env(name, def), usage+" ($HERALD_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))+")")
	}
	boolean := func(p *bool, name string, def bool, usage string) {
		v, err := strconv.ParseBool(env(name, strconv.FormatBool(def)))
		if err != nil {
			errs = append(errs, fmt.Errorf("HERALD_%s: %w", strings.ToUpper(strings.ReplaceAll(name, "-", "_")), err))
		}
		fs.BoolVar(p, name, v, usage+" ($HERALD_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))+")")
	}
	integer := func(p *int, name string, def int, usage string) {
		v, err := strconv.Atoi(env(name, strconv.Itoa(def)))
		if err != nil {
			errs = append(errs, fmt.Errorf("HERALD_%s: %w", strings.ToUpper(strings.ReplaceAll(name, "-", "_")), err))
		}
		fs.IntVar(p, name, v, usage+" ($HERALD_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))+")")
	}
	duration := func(p *time.Duration, name string, def time.Duration, usage string) {
		v, err := time.ParseDuration(env(name, def.String()))
		if err != nil {
			errs = append(errs, fmt.Errorf("HERALD_%s: %w", strings.ToUpper(strings.ReplaceAll(name, "-", "_")), err))
		}
		fs.DurationVar(p, name, v, usage+" ($HERALD_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))+")")
	}
	var maxReq int
	c := &o.cfg
	str(&c.Addr, "addr", ":8080", "listen address")
	str(&c.DB, "db", "herald.db", "database: a SQLite file, or a postgres:// URL (postgres://user:pass@host:5432/herald?sslmode=verify-full)")
	integer(&c.DBMaxConns, "db-max-conns", 0, "most PostgreSQL connections (0: the URL's pool_max_conns, else 16)")
	boolean(&o.migrate, "migrate", true, "apply pending database migrations at start (--migrate=false refuses to start on an old schema: run herald migrate up)")
	str(&c.Synchronous, "sqlite-synchronous", "NORMAL", "SQLite synchronous mode: NORMAL survives process crashes, FULL also power loss")
	boolean(&o.dev, "dev", false, "development mode: --allow-http, --allow-private-destinations, text logs and the example event catalog")
	str(&o.catalog, "catalog", "", "a catalog file (as herald catalog export writes) to import into the default catalog at every start; types it leaves out stay as they are")
	boolean(&c.AllowHTTP, "allow-http", false, "allow http:// endpoint URLs (default: https only)")
	boolean(&c.AllowPrivateDestinations, "allow-private-destinations", false, "allow loopback, private and link-local destinations (development only)")
	str(&c.AllowDestinations, "allow-destinations", "", "extra allowed destinations: comma-separated CIDRs or ip:port, e.g. 10.1.0.0/16,127.0.0.1:9000")
	str(&c.EgressProxy, "egress-proxy", "", "send every outbound request through this HTTP proxy (http://user:pass@proxy:3128): CONNECT for https, absolute-form for http")
	str(&c.EncryptionKeyFile, "encryption-key-file", "", "file of the keys that encrypt endpoints' secrets, one <id>:<base64 key> a line, the first encrypting (or HERALD_ENCRYPTION_KEYS; default: a key file beside a SQLite database)")
	str(&c.PublicURL, "public-url", "", "Herald's URL as browsers reach it (https://herald.example.com), for portal links; default: the URL of each request")
	str(&o.cors, "cors-origins", "", "comma-separated origins allowed to call the API from browsers, or *")
	integer(&maxReq, "max-request-bytes", 5<<20, "largest accepted request body")
	integer(&c.MaxPayloadBytes, "max-payload-bytes", 256<<10, "largest accepted event payload")
	integer(&c.Workers, "workers", 128, "most requests in flight at once")
	integer(&c.PerEndpoint, "per-endpoint", 32, "most requests in flight to one endpoint")
	duration(&c.Lease, "lease", time.Minute, "how long a claimed delivery stays leased before another worker may take it over")
	duration(&c.PollInterval, "poll-interval", 250*time.Millisecond, "how often to look for due retries")
	integer(&c.DisableAfter, "disable-after", 20, "consecutive failed deliveries that disable an endpoint (negative: never)")
	duration(&c.Retention, "retention", 30*24*time.Hour, "how long events, deliveries and attempts are kept once finished (0: forever)")
	duration(&c.ShutdownGrace, "shutdown-grace", 10*time.Second, "how long shutdown waits for in-flight attempts")
	integer(&c.MaxConnectionsPerKey, "max-connections-per-key", 20, "live (websocket) connections allowed per API key")
	integer(&c.CoresPerApp, "cores-per-app", 0, "API operations of one app that work on the cores at once (0: half of GOMAXPROCS, at least 1)")
	integer(&c.MaxSubscriptionsPerConnection, "max-subscriptions-per-connection", 20, "subscriptions allowed per websocket connection")
	integer(&c.SubscriberBuffer, "subscriber-buffer", 256, "updates a subscription may fall behind before it is disconnected")
	str(&c.DebugAddr, "debug-addr", "", "serve Go's pprof profiles on this address (e.g. 127.0.0.1:6060); keep it private")
	boolean(&o.metrics, "metrics", true, "serve Prometheus metrics at /metrics (--metrics=false turns them off)")
	str(&c.MetricsAddr, "metrics-addr", "", "serve /metrics on this address (e.g. 127.0.0.1:9090) instead of --addr")
	str(&o.logFormat, "log-format", "", "log format: text or json (default json, text with --dev)")
	str(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	str(&o.memoryLimit, "memory-limit", "auto", "the Go heap's soft limit: auto (GOMEMLIMIT, else 90% of the container's memory limit), off, or a size such as 512MiB")
	str(&o.procs, "procs", "auto", "processors: auto (one while the load is light, all the runtime gives under load; GOMAXPROCS, if set, is kept) or all")
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	c.MaxRequestBytes = int64(maxReq)
	// The keys themselves only from the environment: a flag would show
	// them in the process list.
	c.EncryptionKeys = getenv("HERALD_ENCRYPTION_KEYS")
	c.DisableMetrics = !o.metrics
	c.NoMigrate = !o.migrate
	if c.DisableMetrics && c.MetricsAddr != "" {
		return nil, errors.New("--metrics-addr serves the metrics that --metrics=false turns off: drop one")
	}
	if c.DBMaxConns < 0 {
		return nil, fmt.Errorf("--db-max-conns must not be negative, got %d", c.DBMaxConns)
	}
	if c.Retention < 0 {
		return nil, fmt.Errorf("--retention must not be negative (0 keeps everything), got %s", c.Retention)
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("--public-url must be a scheme and host such as https://herald.example.com, got %q", c.PublicURL)
		}
	}
	if o.catalog != "" {
		b, err := os.ReadFile(o.catalog)
		if err != nil {
			return nil, fmt.Errorf("--catalog: %w", err)
		}
		c.Catalog = b
	}
	if o.dev {
		if c.Catalog == nil {
			c.Catalog = examples.Catalog
		}
		c.AllowHTTP, c.AllowPrivateDestinations = true, true
		if o.logFormat == "" {
			o.logFormat = "text"
		}
	}
	if o.cors != "" {
		for _, s := range strings.Split(o.cors, ",") {
			if s = strings.TrimSpace(s); s != "" {
				c.CORSOrigins = append(c.CORSOrigins, s)
			}
		}
	}
	return o, nil
}

func newLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: use debug, info, warn or error", level)
	}
	// Secrets that reach a log line by mistake show as [REDACTED].
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: secret.RedactAttr}
	switch format {
	case "", "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q: use text or json", format)
	}
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(o.logFormat, o.logLevel, stderr)
	if err != nil {
		return err
	}
	o.cfg.Logger = log
	limit, err := setMemoryLimit(o.memoryLimit, log)
	if err != nil {
		return err
	}
	adapt, err := parseProcs(o.procs)
	if err != nil {
		return err
	}
	if limit != math.MaxInt64 {
		log.Info("memory limit", "bytes", limit)
	}
	if o.cfg.AllowPrivateDestinations {
		log.Warn("private destinations are allowed: endpoints may reach this machine and its network (development only)")
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	tp, err := tracing.FromEnv(ctx, server.Version)
	if err != nil {
		return err
	}
	if tp != nil {
		o.cfg.TracerProvider = tp
		defer func() {
			// Export the spans still waiting.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := tp.Shutdown(sctx); err != nil {
				log.Warn("flush traces", "err", err)
			}
		}()
		log.Info("tracing on: exporting spans over OTLP/HTTP")
	}
	srv, err := server.New(ctx, o.cfg)
	if err != nil {
		return err
	}
	// After server.New, which sizes pools by GOMAXPROCS as the runtime
	// set it.
	if adapt {
		adaptProcs(ctx, getenv, log)
	}
	if tok := srv.BootstrapToken(); tok != "" {
		printBootstrap(stdout, tok, o.cfg.Addr, o.cfg.PublicURL)
	}
	return srv.Run(ctx)
}

// printBootstrap shows the first API key, which exists nowhere else, and
// where to use it.
func printBootstrap(w io.Writer, token, addr, publicURL string) {
	base := strings.TrimRight(publicURL, "/")
	if base == "" {
		host := addr
		if strings.HasPrefix(host, ":") {
			host = "localhost" + host
		}
		base = "http://" + host
	}
	fmt.Fprintf(w, `
Herald created the app "default" and an admin API key for it.
The key is shown only this once; store it now:

    %[2]s

GraphiQL (the API):      %[1]s/
    put {"Authorization": "Bearer %[2]s"} in the Headers tab.
Console (live feeds):    %[1]s/console
    paste the key when it asks.
Customer portal:         opened by a link made for one customer; make one with
    HERALD_URL=%[1]s HERALD_API_KEY=%[2]s herald portal-link
    or the createPortalSession mutation in GraphiQL.
The CLI:                 herald login --url %[1]s   (then: herald help)

`, base, token)
}
