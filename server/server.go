// Package server wires Herald together: the database, the dispatch engine,
// the GraphQL handler with its transports, authentication, limits and
// logging, the health probes, and the browser pages.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"entgo.io/ent/dialect"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"go.opentelemetry.io/otel/trace"

	"github.com/heraldhq/herald/apps"
	"github.com/heraldhq/herald/auth"
	"github.com/heraldhq/herald/bus"
	"github.com/heraldhq/herald/catalog"
	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/destination/builtin"
	"github.com/heraldhq/herald/destination/listener"
	"github.com/heraldhq/herald/dispatch"
	"github.com/heraldhq/herald/endpoints"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/fair"
	"github.com/heraldhq/herald/graph"
	"github.com/heraldhq/herald/metrics"
	"github.com/heraldhq/herald/portal"
	"github.com/heraldhq/herald/retention"
	"github.com/heraldhq/herald/server/webui"
	"github.com/heraldhq/herald/stats"
	"github.com/heraldhq/herald/tenant"
	"github.com/heraldhq/herald/tracing"
	"github.com/heraldhq/herald/transform"
)

// Version is Herald's version, reported in the User-Agent of deliveries.
// Builds set it with -ldflags "-X github.com/heraldhq/herald/server.Version=…".
var Version = "0.1.0-dev"

// Config configures a Server. Zero fields take the defaults documented in
// the table of docs/configuration.md.
type Config struct {
	// Addr is the listen address of Run (default ":8080").
	Addr string
	// DB is the database: a SQLite file (default "herald.db") or a
	// postgres:// URL. PostgreSQL is refused until the delivery engine
	// has a driver for it.
	DB string
	// DBPath is the SQLite database file.
	//
	// Deprecated: use DB, which wins when both are set.
	DBPath string
	// Synchronous is SQLite's synchronous mode: NORMAL (default) or FULL.
	Synchronous string
	// DBMaxConns is the most connections to PostgreSQL (default: the
	// URL's pool_max_conns, else 16).
	DBMaxConns int
	// NoMigrate refuses a database that has migrations pending instead of
	// applying them (herald serve --migrate=false); `herald migrate up`
	// applies them.
	NoMigrate bool

	// AllowHTTP permits http:// endpoint URLs (otherwise https only).
	AllowHTTP bool
	// AllowPrivateDestinations permits loopback, private and link-local
	// destinations: for development and tests only.
	AllowPrivateDestinations bool
	// AllowDestinations lists extra permitted destinations, such as
	// "10.1.0.0/16,127.0.0.1:9000".
	AllowDestinations string
	// EgressProxy, if set, is the HTTP proxy every outbound request and
	// connection leaves through ("http://user:password@proxy:3128"): see
	// destination.Env.Proxy.
	EgressProxy string

	// EncryptionKeys are the keys of endpoints' secrets at rest, written
	// "<id>:<base64 key>" separated by commas or lines, the first
	// encrypting (HERALD_ENCRYPTION_KEYS). EncryptionKeyFile names a file
	// of them instead. With neither, a SQLite database gets a key file
	// beside it on first start (KeyFilePath); PostgreSQL needs one or the
	// other, the same on every replica.
	EncryptionKeys    string
	EncryptionKeyFile string

	// PublicURL is Herald's URL as browsers reach it, such as
	// "https://herald.example.com": portal links start with it. Empty: the
	// scheme and host of the request that creates the link.
	PublicURL string

	// CORSOrigins lists origins allowed to call the API from a browser
	// ("*" for any). Empty: same origin only.
	CORSOrigins []string
	// MaxRequestBytes limits the size of a request body (default 5 MiB).
	MaxRequestBytes int64
	// MaxPayloadBytes limits the size of a published payload (default
	// 256 KiB).
	MaxPayloadBytes int

	// MaxConnectionsPerKey limits live websocket connections per API key
	// (default 20).
	MaxConnectionsPerKey int
	// MaxSubscriptionsPerConnection limits subscriptions on one websocket
	// connection (default 20).
	MaxSubscriptionsPerConnection int
	// SubscriberBuffer is how many updates a subscription may fall behind
	// before it is disconnected (default 256).
	SubscriberBuffer int
	// KeepAlive is how often idle websocket connections are pinged
	// (default 15s).
	KeepAlive time.Duration

	// BodyTimeout bounds reading the body of an HTTP request to /graphql
	// (default 30s); ResponseTimeout bounds running it and writing the
	// answer (default 2m). Websockets have their own limits.
	BodyTimeout, ResponseTimeout time.Duration

	// RecheckInterval is how often the keys of open live connections are
	// read again from the database, so that a revocation whose notice
	// another replica lost still closes them (default 5s, the
	// authenticator's cache lifetime).
	RecheckInterval time.Duration

	// TurnWait is how long an API request waits for a turn of its app
	// (the app's CONCURRENT_REQUESTS limit, or its share of the cores)
	// before it is refused (default 10s).
	TurnWait time.Duration

	// CoresPerApp is how many API operations of one app work on the cores
	// at once (default half of GOMAXPROCS, at least one); see package fair.
	CoresPerApp int

	// Engine settings; see dispatch.Config.
	Workers       int
	PerEndpoint   int
	Lease         time.Duration
	PollInterval  time.Duration
	DisableAfter  int
	ShutdownGrace time.Duration
	// MetaWindow is how often at most Herald reports one endpoint's failed
	// deliveries with a webhook.failed event (default 1m).
	MetaWindow time.Duration

	// Catalog is a catalog file (package catalog's format) imported into
	// the default catalog at every start: types it lists are made as it
	// says, types it leaves out stay as they are, so starting again
	// changes nothing. herald serve --dev gives the example catalog
	// (examples/catalog.json). Nil: nothing is imported.
	Catalog []byte

	// Retention is how long history is kept: events older than this whose
	// deliveries have all finished are deleted with their deliveries and
	// attempts (see package retention). Zero keeps everything; herald serve
	// defaults to 30 days.
	Retention time.Duration

	// DebugAddr, if set, serves net/http/pprof profiles on a separate
	// listener.
	DebugAddr string

	// DisableMetrics turns the Prometheus metrics (GET /metrics) off.
	DisableMetrics bool
	// MetricsAddr, if set, serves the metrics on a listener of their own
	// instead of the main one.
	MetricsAddr string
	// TracerProvider, if set, traces GraphQL operations, publishes,
	// attempts and the recorder's commits (tracing.FromEnv configures one
	// from the OTEL_* environment). Nil: tracing is off.
	TracerProvider trace.TracerProvider

	// Logger receives the server's logs (default slog.Default()).
	Logger *slog.Logger
	// Rand is the source of secrets and tokens (default crypto/rand).
	Rand io.Reader
	// EndpointsClock is the clock of endpoints' lifecycle: when they were
	// disabled, when a rotated secret's overlap ends, when a listener's
	// session was last seen and when the listener expires (default
	// time.Now). Tests move it forward to see listeners expire.
	EndpointsClock func() time.Time
	// ListenerSweep is how often expired listeners are removed (default
	// 30s).
	ListenerSweep time.Duration
}

// Server is a running Herald instance.
type Server struct {
	cfg        Config
	log        *slog.Logger
	db         *db.DB
	driver     dispatch.Driver
	replicas   *replicas // nil: no other replica (SQLite)
	engine     *dispatch.Engine
	pruner     *retention.Pruner // nil: history is kept forever
	auth       *auth.Authenticator
	portal     *portal.Service
	bus        *bus.Bus
	endpoints  *endpoints.Service
	listeners  *listener.Hub
	websockets *gorillaWebsockets
	live       *liveLimits
	requests   *appRequests
	turns      *fair.Turns
	handler    http.Handler
	metrics    *metrics.Metrics // nil: metrics are off
	token      string
	// draining is set once shutdown begins: /readyz then answers 503 so
	// load balancers stop sending requests.
	draining  atomic.Bool
	closeOnce sync.Once
	closeErr  error
	// recheck asks for the live connections' keys to be checked now;
	// recheckStop ends their periodic check.
	recheck     chan struct{}
	recheckStop chan struct{}
	// expiryStop ends the removal of expired listeners; expiryDone is
	// closed once it has.
	expiryStop chan struct{}
	expiryDone chan struct{}
	expiring   atomic.Bool
}

// New opens the database (creating and migrating it if needed), prepares
// the default app on an empty database, and builds the HTTP handler. Call
// Start to begin delivering and Close to release everything.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = ":8080"
	}
	if cfg.DB == "" {
		cfg.DB = cfg.DBPath
	}
	if cfg.DB == "" {
		cfg.DB = "herald.db"
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 5 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxConnectionsPerKey <= 0 {
		cfg.MaxConnectionsPerKey = 20
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	if cfg.MaxSubscriptionsPerConnection <= 0 {
		cfg.MaxSubscriptionsPerConnection = 20
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = 30 * time.Second
	}
	if cfg.ResponseTimeout <= 0 {
		cfg.ResponseTimeout = 2 * time.Minute
	}
	if cfg.RecheckInterval <= 0 {
		cfg.RecheckInterval = 5 * time.Second
	}
	if cfg.TurnWait <= 0 {
		cfg.TurnWait = 10 * time.Second
	}
	rules, err := destination.ParseRules(cfg.AllowDestinations)
	if err != nil {
		return nil, fmt.Errorf("allowed destinations: %w", err)
	}
	policy := destination.Policy{AllowHTTP: cfg.AllowHTTP, AllowPrivate: cfg.AllowPrivateDestinations, Allow: rules}
	// The listener sessions this process holds. Their hooks reach the
	// engine and the other replicas, which exist once New has made them
	// (sessions begin only once the server serves).
	var (
		engine *dispatch.Engine
		reps   *replicas
	)
	hub := listener.NewHub(listener.HubConfig{
		Wake: func(id string) { engine.Notify(id) },
		Announce: func(id, session string) {
			if reps != nil {
				reps.cluster.ListenerAttached(id, session)
			}
		},
	})
	var proxy *url.URL
	if cfg.EgressProxy != "" {
		if proxy, err = destination.ParseProxy(cfg.EgressProxy); err != nil {
			return nil, err
		}
	}
	dests := builtin.RegistryWith(hub)
	transforms := transform.New(transform.Limits{})
	var destTypes []destination.Type
	for _, s := range dests.Specs() {
		destTypes = append(destTypes, s.Type)
	}

	migrate := db.MigrateApply
	if cfg.NoMigrate {
		migrate = db.MigrateCheck
	}
	d, err := db.Open(ctx, db.Config{DSN: cfg.DB, Synchronous: cfg.Synchronous, MaxConns: cfg.DBMaxConns, Migrate: migrate, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	// The keys after the database: an unreachable database is the error
	// to report first.
	keys, err := loadKeys(cfg)
	if err != nil {
		d.Close()
		return nil, err
	}
	cat := catalog.New(d.Client, 0)
	epService := &endpoints.Service{
		Client: d.Client, Catalog: cat, Policy: policy, Destinations: dests, Transforms: transforms, Secrets: keys, Rand: cfg.Rand,
		Now: cfg.EndpointsClock,
	}
	if err := openSecrets(ctx, d, epService, cfg.Logger); err != nil {
		d.Close()
		return nil, err
	}
	token, err := bootstrap(ctx, d, cat, cfg)
	if err != nil {
		d.Close()
		return nil, err
	}
	var (
		driver      dispatch.Driver
		targets     *replicaTargets
		enginePeers dispatch.Peers
		busCfg      = bus.Config{Buffer: cfg.SubscriberBuffer}
	)
	if d.Dialect() == dialect.Postgres {
		driver = dispatch.NewPostgresDriver(d.Pool)
		if reps, targets, err = newReplicas(d, cfg.Logger); err != nil {
			d.Close()
			return nil, err
		}
		busCfg.Relay = reps.relay
		enginePeers = peers{reps.cluster}
		cat.AnnounceChanges(reps.cluster.Catalog)
	} else {
		driver = dispatch.NewSQLiteDriver(d.Write, d.Read)
	}
	live := bus.New(busCfg)
	if reps != nil {
		if err := reps.relay.Attach(live); err != nil {
			d.Close()
			return nil, err
		}
	}
	observer := graph.NewObserver(live)
	var (
		s       *Server
		mets    *metrics.Metrics
		reports dispatch.Metrics
	)
	if !cfg.DisableMetrics {
		// The functions run on scrapes, once s and engine exist.
		mets = metrics.New(metrics.Config{
			Version:  Version,
			Backlog:  func(ctx context.Context) (dispatch.Backlog, error) { return engine.Backlog(ctx) },
			InFlight: func() int { return engine.InFlight() },
			Live:     func() (int, int) { return s.LiveStats() },
			DBs:      []metrics.DB{{Name: "writer", DB: d.Write}, {Name: "reader", DB: d.Read}},
			PgxPool:  d.Pool,
			Logger:   cfg.Logger,

			Destinations: destTypes,
		})
		reports = mets
	}
	engine, err = dispatch.New(dispatch.Config{
		Peers:         enginePeers,
		Driver:        driver,
		Client:        d.Client,
		Catalog:       cat,
		Policy:        policy,
		Proxy:         proxy,
		Secrets:       keys,
		Destinations:  dests,
		Transforms:    transforms,
		MaxPayload:    cfg.MaxPayloadBytes,
		Workers:       cfg.Workers,
		PerEndpoint:   cfg.PerEndpoint,
		Lease:         cfg.Lease,
		PollInterval:  cfg.PollInterval,
		DisableAfter:  cfg.DisableAfter,
		ShutdownGrace: cfg.ShutdownGrace,
		MetaWindow:    cfg.MetaWindow,
		UserAgent:     "Herald/" + Version,
		Logger:        cfg.Logger,
		Observer:      observer,
		Metrics:       reports,

		TracerProvider: cfg.TracerProvider,
	})
	if err != nil {
		d.Close()
		return nil, err
	}
	var pruner *retention.Pruner
	if cfg.Retention != 0 {
		pruner, err = retention.New(retention.Config{
			DB: d.Write, Dialect: d.Dialect(), Lock: d.Mutex("retention"), Period: cfg.Retention, Logger: cfg.Logger,
		})
		if err != nil {
			d.Close()
			return nil, err
		}
	}
	authn := auth.NewAuthenticator(d.Client, cfg.Logger, 0)
	if reps != nil {
		authn.AnnounceRevocations(reps.cluster.KeyRevoked)
		targets.engine, targets.auth, targets.catalog, targets.listeners = engine, authn, cat, hub
	}
	s = &Server{
		cfg: cfg, log: cfg.Logger, db: d, driver: driver, engine: engine, pruner: pruner, auth: authn, token: token, bus: live,
		replicas: reps, metrics: mets,
		websockets:  newGorillaWebsockets(),
		requests:    newAppRequests(d.Client, cfg.TurnWait),
		turns:       fair.NewTurns(cfg.CoresPerApp, cfg.TurnWait),
		recheck:     make(chan struct{}, 1),
		recheckStop: make(chan struct{}),
		expiryStop:  make(chan struct{}),
		expiryDone:  make(chan struct{}),
		live:        &liveLimits{perKey: cfg.MaxConnectionsPerKey, byKey: make(map[string]int)},
	}
	if reps != nil {
		targets.recheck = s.pokeRecheck
	}
	// A revoked key's live connections end at once, whether this process
	// revoked it or learned that another one did.
	authn.OnRevoke(func(keyID string) {
		if n := s.websockets.closeKey(keyID, CloseUnauthorized, "API key revoked"); n > 0 {
			s.log.Info("closed live connections of a revoked API key", "key_id", keyID, "connections", n)
		}
	})

	s.portal = &portal.Service{Client: d.Client, Auth: authn, Rand: cfg.Rand}
	epService.Engine, epService.Observer = engine, observer
	s.endpoints = epService
	s.listeners = hub
	schema := graph.NewSchema(graph.Deps{
		Client:     d.Client,
		Auth:       authn,
		Catalog:    cat,
		Endpoints:  s.endpoints,
		Listeners:  hub,
		Engine:     engine,
		Bus:        live,
		Portal:     s.portal,
		PublicURL:  cfg.PublicURL,
		Stats:      &stats.Store{DB: d.Read, Dialect: d.Dialect()},
		Rand:       cfg.Rand,
		MaxPayload: cfg.MaxPayloadBytes,
	})
	gql := handler.New(schema)
	if cfg.TracerProvider != nil {
		gql.Use(tracing.GraphQL{Tracer: cfg.TracerProvider.Tracer("github.com/heraldhq/herald/graph")})
	}
	gql.AddTransport(s.websocketTransport())
	gql.AddTransport(transport.Options{})
	gql.AddTransport(transport.GET{})
	gql.AddTransport(newPOSTTransport(schema.Schema(), parserTokenLimit))
	gql.SetQueryCache(graph.PageDefaultsCache{Next: lru.New[*ast.QueryDocument](1000)})
	gql.SetParserTokenLimit(parserTokenLimit)
	gql.Use(extension.Introspection{})
	gql.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](1000)})
	gql.Use(graph.OperationLimits{})
	gql.Use(requireViewer{})
	gql.Use(recheckLiveKey{auth: authn, log: cfg.Logger})
	gql.Use(graph.ScopeCheck{})
	gql.Use(graph.PageLimits{})
	gql.Use(graph.DepthLimit{Max: graph.MaxDepth})
	gql.Use(extension.FixedComplexityLimit(graph.MaxComplexity))
	gql.AroundOperations(s.takeTurns)
	gql.AroundResponses(graph.Loaders(d.Client))
	gql.AroundFields(graph.Middleware)
	gql.AroundFields(graph.Audit(d.Client, cfg.Logger))
	gql.SetErrorPresenter(graph.ErrorPresenter(cfg.Logger))
	gql.SetRecoverFunc(graph.Recover(cfg.Logger))

	mux := http.NewServeMux()
	mux.Handle("/graphql", s.checkOrigin(withConnSlot(s.authenticate(s.limitBody(s.heavyTurn(s.appTurn(s.detachWebsocket(gql))))))))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", s.ready)
	if mets != nil && cfg.MetricsAddr == "" {
		mux.Handle("GET /metrics", mets.Handler())
	}
	ui := webui.Handler()
	mux.Handle("/", ui)
	mux.Handle("/portal/", s.portalPage())
	mux.Handle("/portal", s.portalPage())
	s.handler = s.recoverPanics(s.logRequests(s.cors(mux)))
	return s, nil
}

// bootstrap creates the default app and its first admin key in an empty
// database, one replica at a time, and returns the key ("" if the database
// was not empty).
// bootstrap prepares the database, one replica at a time: it gives a
// database from before shared catalogs its default catalog (once), every
// catalog the system types, an empty database its default app and first
// key (whose token it returns), and imports cfg.Catalog.
func bootstrap(ctx context.Context, d *db.DB, cat *catalog.Catalog, cfg Config) (string, error) {
	unlock, err := d.Mutex("bootstrap").Lock(ctx)
	if err != nil {
		return "", fmt.Errorf("bootstrap: %w", err)
	}
	defer unlock()
	m, err := catalog.MigrateToShared(ctx, d.Client)
	if err != nil {
		return "", err
	}
	if m.Ran && m.Apps > 0 {
		cfg.Logger.Info("moved the apps' event types to the shared default catalog",
			"catalog_id", m.DefaultID, "apps", m.Apps, "shared", len(m.Shared), "kept_per_app", len(m.Kept))
	}
	if err := catalog.EnsureSystemTypes(ctx, d.Client); err != nil {
		return "", err
	}
	token, err := apps.Bootstrap(ctx, d.Client, cfg.Rand)
	if err != nil {
		return "", err
	}
	if cfg.Catalog != nil {
		if err := importCatalog(ctx, d.Client, cat, cfg.Catalog, cfg.Logger); err != nil {
			return "", err
		}
	}
	return token, nil
}

// importCatalog imports a catalog file into the default catalog.
func importCatalog(ctx context.Context, client *ent.Client, cat *catalog.Catalog, data []byte, log *slog.Logger) error {
	f, err := catalog.ParseFile(data)
	if err != nil {
		return err
	}
	def, err := catalog.Default(ctx, client)
	if err != nil {
		return err
	}
	res, err := cat.Import(tenant.System(ctx), def.ID, f.EventTypes, catalog.ImportOptions{})
	if err != nil {
		return fmt.Errorf("import the catalog file: %w", err)
	}
	if res.Changed() {
		log.Info("imported the catalog file into the default catalog",
			"created", len(res.Created), "updated", len(res.Updated), "unarchived", len(res.Unarchived))
	}
	return nil
}

// Store returns the server's database, for maintenance tools and tests.
func (s *Server) Store() *db.DB { return s.db }

// LiveStats reports the open websocket connections and subscriptions.
func (s *Server) LiveStats() (connections, subscriptions int) {
	return s.websockets.open(), s.bus.Active()
}

// Handler returns the HTTP handler of the whole server.
func (s *Server) Handler() http.Handler { return s.handler }

// BootstrapToken returns the API key created for the default app when New
// found an empty database, or "" otherwise. It exists only in memory.
func (s *Server) BootstrapToken() string { return s.token }

// Start starts delivering and pruning expired history.
func (s *Server) Start() {
	if s.replicas != nil {
		s.replicas.start(s.log)
	}
	go s.runRecheck(s.cfg.RecheckInterval, s.recheck, s.recheckStop)
	if s.expiring.CompareAndSwap(false, true) {
		sweep := s.cfg.ListenerSweep
		if sweep <= 0 {
			sweep = listenerSweep
		}
		go s.expireListeners(sweep)
	}
	s.engine.Start()
	if s.pruner != nil {
		s.pruner.Start()
	}
}

// Drain stops taking deliveries and lets the attempts in flight finish
// within the shutdown grace (see dispatch.Engine.Drain). The API keeps
// working, publishing included, until Close.
func (s *Server) Drain(ctx context.Context) error {
	s.engine.Quiesce()
	s.draining.Store(true)
	return s.engine.Drain(ctx)
}

// Close stops delivering (draining first if Drain was not called) and
// pruning, and closes the database.
// It is safe to call more than once.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.engine.Quiesce()
		s.draining.Store(true)
		if s.pruner != nil {
			s.pruner.Close()
		}
		close(s.expiryStop)
		if s.expiring.Load() {
			<-s.expiryDone
		}
		err := s.engine.Close(ctx)
		if s.replicas != nil {
			if rerr := s.replicas.close(ctx); err == nil {
				err = rerr
			}
		}
		s.bus.Close()
		close(s.recheckStop)
		s.websockets.closeAll()
		s.listeners.Close(nil)
		s.driver.Close()
		if cerr := s.db.Close(); err == nil {
			err = cerr
		}
		s.closeErr = err
	})
	return s.closeErr
}

// Run serves HTTP on cfg.Addr until ctx ends, then shuts down gracefully:
// it stops accepting requests, lets running ones finish, and closes the
// server. It calls Start itself.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on an existing listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.Start()
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	if s.cfg.DebugAddr != "" {
		dbg := &http.Server{Addr: s.cfg.DebugAddr, Handler: debugHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := dbg.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("debug listener", "addr", s.cfg.DebugAddr, "err", err)
			}
		}()
		defer dbg.Close()
		s.log.Info("pprof listening", "addr", s.cfg.DebugAddr)
	}
	if s.metrics != nil && s.cfg.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", s.metrics.Handler())
		ms := &http.Server{Addr: s.cfg.MetricsAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := ms.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("metrics listener", "addr", s.cfg.MetricsAddr, "err", err)
			}
		}()
		defer ms.Close()
		s.log.Info("metrics listening", "addr", s.cfg.MetricsAddr)
	}
	s.log.Info("herald listening", "addr", ln.Addr().String(), "db", db.Redact(s.cfg.DB), "version", Version)
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	s.log.Info("shutting down")
	// The engine stops taking deliveries at once and has its own grace
	// for the attempts in flight (Drain); meanwhile HTTP requests drain
	// with theirs, publishing included.
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		if err := s.Drain(context.Background()); err != nil {
			s.log.Warn("drain deliveries", "err", err)
		}
	}()
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), httpDrainTimeout)
	defer cancel()
	if err := hs.Shutdown(hctx); err != nil {
		s.log.Warn("http shutdown", "err", err)
	}
	<-drained
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer ccancel()
	if err := s.Close(cctx); err != nil {
		s.log.Warn("close", "err", err)
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

// parserTokenLimit is the most tokens a GraphQL document may have: well
// above any operation of the schema, far below what makes parsing costly.
const parserTokenLimit = 20000

// Shutdown timeouts besides the engine's grace: how long running HTTP
// requests may take to finish, and how long Close waits for the database
// to take the last results.
const (
	httpDrainTimeout = 15 * time.Second
	closeTimeout     = 10 * time.Second
)

// ready answers the readiness probe: the server is not shutting down and
// the database answers.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "shutting down\n")
		return
	}
	if err := s.db.Read.PingContext(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "database unavailable\n")
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}

// debugHandler serves the pprof profiles.
func debugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// portalPage serves the customer portal of the app named in the path,
// framable by the app's allowed origins only.
func (s *Server) portalPage() http.Handler {
	return webui.PortalHandler(func(r *http.Request, appID string) ([]string, error) {
		origins, err := portal.AllowedOrigins(r.Context(), s.db.Client, appID)
		if err != nil {
			s.log.ErrorContext(r.Context(), "portal page", "app_id", appID, "err", err)
		}
		return origins, err
	})
}

// listenerSweep is how often a server removes the listeners whose TTL ran
// out (every replica does; each listener is removed once).
const listenerSweep = 30 * time.Second

// expireListeners removes expired listeners every interval until Close.
func (s *Server) expireListeners(interval time.Duration) {
	defer close(s.expiryDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.expiryStop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		n, err := s.endpoints.ExpireListeners(ctx)
		cancel()
		switch {
		case err != nil:
			s.log.Warn("remove expired listeners; trying again later", "err", err)
		case n > 0:
			s.log.Info("removed expired listeners", "count", n)
		}
	}
}
