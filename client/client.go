package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Khan/genqlient/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Version is the client's version, sent in its User-Agent.
var Version = "0.1.0-dev"

// Config configures a Client. URL and APIKey are required; the other fields
// have useful zero values.
type Config struct {
	// URL is the Herald server's base URL, such as "http://localhost:8080"
	// (the API is at its /graphql).
	URL string
	// APIKey is the key the client authenticates with (hrld_…).
	APIKey string
	// App is the app an admin key acts in (sent as X-Herald-App); empty: the
	// key's own app.
	App string
	// HTTPClient sends the requests; nil means a client with a 30-second
	// timeout.
	HTTPClient *http.Client
	// UserAgent is sent with every request, before the client's own
	// "herald-go/<version>".
	UserAgent string
	// Live configures live feeds (subscriptions).
	Live LiveConfig
}

// Client calls one Herald server as one API key. It is safe for concurrent
// use.
type Client struct {
	cfg     Config
	base    *url.URL
	gql     graphql.Client
	headers http.Header
}

// New returns a client for cfg. It checks the configuration but does not
// contact the server: Viewer does.
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" {
		return nil, errors.New("herald client: no server URL")
	}
	base, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("herald client: server URL %q: want http(s)://host[:port]", cfg.URL)
	}
	if cfg.APIKey == "" {
		return nil, errors.New("herald client: no API key")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	ua := "herald-go/" + Version
	if cfg.UserAgent != "" {
		ua = cfg.UserAgent + " " + ua
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+cfg.APIKey)
	h.Set("User-Agent", ua)
	if cfg.App != "" {
		h.Set("X-Herald-App", cfg.App)
	}
	c := &Client{cfg: cfg, base: base, headers: h}
	c.gql = &transport{
		c:     c,
		inner: graphql.NewClient(base.String()+"/graphql", doer{c.cfg.HTTPClient, h}),
	}
	return c, nil
}

// URL returns the server's base URL.
func (c *Client) URL() string { return c.base.String() }

// GraphQL returns the genqlient client the methods use, with the client's
// credentials and errors, for operations of your own generated with
// genqlient from Herald's schema.
func (c *Client) GraphQL() graphql.Client { return c.gql }

// doer adds the client's headers to every request.
type doer struct {
	hc     *http.Client
	header http.Header
}

func (d doer) Do(r *http.Request) (*http.Response, error) {
	for k, v := range d.header {
		r.Header[k] = v
	}
	return d.hc.Do(r)
}

// transport is genqlient's client with Herald's errors: it turns GraphQL
// and HTTP failures into *Error and network failures into errors that name
// the server.
type transport struct {
	c     *Client
	inner graphql.Client
}

func (t *transport) MakeRequest(ctx context.Context, req *graphql.Request, resp *graphql.Response) error {
	err := t.inner.MakeRequest(ctx, req, resp)
	if err == nil {
		return nil
	}
	return t.c.wrap(req.OpName, err)
}

// wrap turns an error of genqlient's client into one of this package's.
func (c *Client) wrap(op string, err error) error {
	var list gqlerror.List
	var httpErr *graphql.HTTPError
	switch {
	case errors.As(err, &list):
		return fromGQL(list, 0)
	case errors.As(err, &httpErr):
		if len(httpErr.Response.Errors) > 0 && hasCode(httpErr.Response.Errors) {
			return fromGQL(httpErr.Response.Errors, httpErr.StatusCode)
		}
		body := ""
		if len(httpErr.Response.Errors) > 0 {
			body = httpErr.Response.Errors[0].Message
		}
		return &Error{
			Code:       CodeHTTP,
			Message:    fmt.Sprintf("%s answered HTTP %d, not a GraphQL response: is it a Herald server? %s", c.base, httpErr.StatusCode, truncate(body, 200)),
			HTTPStatus: httpErr.StatusCode,
		}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	default:
		return &NetError{URL: c.base.String(), Op: op, Err: err}
	}
}

func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Ptr returns a pointer to v, for the optional fields of inputs, such as
// CreateEndpointInput.Url.
func Ptr[T any](v T) *T { return &v }
