package httpdest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/webhook"
)

// tokenCaches holds the OAuth2 token cache of each set of client
// credentials, so that a token outlives the endpoint configurations that
// use it (they are prepared again on every change and every few seconds).
type tokenCaches struct {
	mu sync.Mutex
	m  map[string]*tokenCache
}

func newTokenCaches() *tokenCaches { return &tokenCaches{m: make(map[string]*tokenCache)} }

// tokenCacheIdle is how long an unused token cache is kept.
const tokenCacheIdle = time.Hour

// get returns the cache of an OAuth2 auth configuration's credentials.
func (c *tokenCaches) get(a webhook.Auth) *tokenCache {
	h := sha256.New()
	for _, s := range []string{a.TokenURL, a.ClientID, a.ClientSecret, strings.Join(a.Scopes, " "), a.Audience} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	key := hex.EncodeToString(h.Sum(nil))
	c.mu.Lock()
	defer c.mu.Unlock()
	if tc := c.m[key]; tc != nil {
		return tc
	}
	now := time.Now()
	for k, tc := range c.m {
		if now.Sub(tc.used()) > tokenCacheIdle {
			delete(c.m, k)
		}
	}
	tc := &tokenCache{
		cfg: clientcredentials.Config{
			ClientID: a.ClientID, ClientSecret: a.ClientSecret, TokenURL: a.TokenURL, Scopes: a.Scopes,
		},
		sem:      make(chan struct{}, 1),
		tokenURL: a.TokenURL,
		lastUsed: now,
	}
	if a.Audience != "" {
		tc.cfg.EndpointParams = url.Values{"audience": {a.Audience}}
	}
	c.m[key] = tc
	return tc
}

// tokenCache fetches and caches the access token of one set of client
// credentials: one fetch at a time, however many sends wait for it, and
// a cached token until shortly before it expires.
type tokenCache struct {
	cfg      clientcredentials.Config
	tokenURL string
	// sem is held while a token is fetched; a channel, so that a send
	// waiting for it can give up when its attempt ends.
	sem chan struct{}

	mu       sync.Mutex
	tok      *oauth2.Token
	fresh    time.Time // the token is used until then
	lastUsed time.Time
	fetches  int
}

func (c *tokenCache) used() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastUsed
}

// cached returns the cached token while it is fresh.
func (c *tokenCache) cached(now time.Time) *oauth2.Token {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastUsed = now
	if c.tok != nil && now.Before(c.fresh) {
		return c.tok
	}
	return nil
}

// token returns a fresh access token, fetching one from the token URL
// through client (the driver's: the policy and the egress proxy apply)
// if the cached one is missing, expired or about to expire.
func (c *tokenCache) token(ctx context.Context, client *http.Client, now time.Time) (*oauth2.Token, error) {
	if tok := c.cached(now); tok != nil {
		return tok, nil
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.sem }()
	if tok := c.cached(now); tok != nil {
		return tok, nil // another send fetched it meanwhile
	}
	tok, err := c.cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, client))
	if err != nil {
		return nil, err
	}
	if tok.AccessToken == "" {
		return nil, errors.New("the token endpoint answered without an access_token")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fetches++
	c.tok = tok
	c.fresh = freshUntil(tok, time.Now())
	return tok, nil
}

// freshUntil returns until when a token just fetched is used: until 30
// seconds, or a fifth of its lifetime if that is shorter, before it
// expires; a token without an expiry until it is refused.
func freshUntil(tok *oauth2.Token, fetched time.Time) time.Time {
	if tok.Expiry.IsZero() {
		return fetched.Add(100 * 365 * 24 * time.Hour)
	}
	life := tok.Expiry.Sub(fetched)
	return tok.Expiry.Add(-min(30*time.Second, life/5))
}

// invalidate forgets tok if it is the cached token: the endpoint refused
// it. A token fetched since by another send is kept.
func (c *tokenCache) invalidate(tok *oauth2.Token) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok == tok {
		c.tok = nil
	}
}

// classify returns the outcome and message of a failed token request,
// naming the token endpoint and its answer: its 5xx and network errors
// are retryable, a 429 throttles, any other refusal (bad credentials) is
// permanent, and a failing egress proxy defers.
func (c *tokenCache) classify(err error, timeout time.Duration) (destination.Outcome, string) {
	where := "OAuth2 token request to " + redactQuery(c.tokenURL)
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		code := re.Response.StatusCode
		msg := fmt.Sprintf("%s failed: HTTP %d", where, code)
		if re.ErrorCode != "" {
			msg += ": " + re.ErrorCode
			if re.ErrorDescription != "" {
				msg += " (" + re.ErrorDescription + ")"
			}
		} else if body := strings.TrimSpace(string(re.Body)); body != "" {
			if len(body) > 200 {
				body = body[:200] + "…"
			}
			msg += ": " + strings.ToValidUTF8(body, "\uFFFD")
		}
		switch {
		case code == http.StatusTooManyRequests:
			return destination.Throttled, msg
		case code >= 500 || code == http.StatusRequestTimeout:
			return destination.Retryable, msg
		case code >= 200 && code < 300:
			return destination.Retryable, msg // an answer that is not a token
		default:
			return destination.Permanent, msg
		}
	}
	o, msg := destination.ClassifyNetError(err, timeout)
	return o, where + " failed: " + msg
}

func redactQuery(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the token URL"
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}
