// Package auth issues and checks Herald's API keys.
//
// A token is "hrld_" followed by 43 characters of URL-safe base64 (32 random
// bytes). Only its SHA-256 hash is stored, with the first 12 characters as a
// visible prefix, so a leaked database does not leak usable keys. Tokens are
// shown once, when created.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald/audit"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/apikey"
	"github.com/heraldhq/herald/ent/app"
	"github.com/heraldhq/herald/ent/predicate"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/scope"
	"github.com/heraldhq/herald/tenant"
)

// TokenPrefix starts every API token.
const TokenPrefix = "hrld_"

// visiblePrefixLen is how much of a token is stored in clear, to tell keys
// apart in lists.
const visiblePrefixLen = 12

// NewToken returns a new random token read from r (crypto/rand when nil).
func NewToken(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [32]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// HashToken returns the stored form of a token.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// KeyInput describes a new API key.
type KeyInput struct {
	AppID string
	Name  string
	Admin bool
	// Scopes restricts the key (see package scope); nil: full access.
	// Admin keys cannot be restricted.
	Scopes []scope.Scope
	// ExpiresAt is when the key stops working; zero: never.
	ExpiresAt time.Time
	// Portal makes the key a customer-portal session.
	Portal bool
	// SessionScopes are what portal sessions the key creates may do
	// beyond its own scopes (only with scope.PortalSessions; see
	// scope.SessionGrant).
	SessionScopes []scope.Scope
}

// Reasons (extensions.reason) of UNAUTHENTICATED errors for keys that
// existed but no longer work.
const (
	// ReasonExpired: the key or portal session expired.
	ReasonExpired = "EXPIRED"
	// ReasonRevoked: the key or portal session was revoked.
	ReasonRevoked = "REVOKED"
)

// CreateKey stores a new key and returns it with its token, which is not
// kept anywhere and cannot be shown again. The caller's context decides
// whether it may (see the APIKey schema hooks: admin keys only).
func CreateKey(ctx context.Context, client *ent.Client, in KeyInput, r io.Reader) (*ent.APIKey, string, error) {
	name := strings.TrimSpace(in.Name)
	if n := utf8.RuneCountInString(name); n == 0 || n > 255 {
		return nil, "", fault.Invalid("input.name", "must be 1-255 characters")
	}
	if in.Admin && in.Scopes != nil {
		return nil, "", fault.Invalid("input.scopes", "admin keys cannot be restricted: leave scopes out, or create an app key")
	}
	if in.Scopes != nil {
		s, err := scope.Normalize(in.Scopes)
		if err != nil {
			return nil, "", fault.Invalid("input.scopes", "%s", err.Error())
		}
		in.Scopes = s
	}
	if in.SessionScopes != nil {
		if in.Scopes == nil || !slices.Contains(in.Scopes, scope.PortalSessions) {
			return nil, "", fault.Invalid("input.portalSessionScopes", "applies only to keys restricted to scopes that include PORTAL_SESSIONS; keys with full access already give sessions the whole portal")
		}
		s, err := scope.Normalize(in.SessionScopes)
		if err != nil {
			return nil, "", fault.Invalid("input.portalSessionScopes", "%s", err.Error())
		}
		for _, x := range s {
			if !slices.Contains(scope.Portal, x) {
				return nil, "", fault.Invalid("input.portalSessionScopes", "%s is not a portal scope: portal sessions may have %s", x, scope.Join(scope.Portal))
			}
		}
		in.SessionScopes = s
	}
	token, err := NewToken(r)
	if err != nil {
		return nil, "", err
	}
	var k *ent.APIKey
	err = audit.Tx(ctx, client, func(tx *ent.Client) (audit.Change, error) {
		c := tx.APIKey.Create().
			SetAppID(in.AppID).
			SetName(name).
			SetAdmin(in.Admin).
			SetPrefix(token[:visiblePrefixLen]).
			SetTokenHash(HashToken(token))
		if in.Scopes != nil {
			c.SetScopes(scope.Strings(in.Scopes))
		}
		if in.SessionScopes != nil {
			c.SetSessionScopes(scope.Strings(in.SessionScopes))
		}
		if !in.ExpiresAt.IsZero() {
			c.SetExpiresAt(in.ExpiresAt.UTC())
		}
		if in.Portal {
			c.SetKind(apikey.KindPORTAL_SESSION)
		}
		var err error
		if k, err = c.Save(ctx); err != nil {
			return audit.Change{}, fmt.Errorf("create api key: %w", err)
		}
		fields := map[string]any{"name": name, "admin": in.Admin, "kind": k.Kind.String(), "prefix": k.Prefix}
		if in.Scopes != nil {
			fields["scopes"] = k.Scopes
		}
		if in.SessionScopes != nil {
			fields["portalSessionScopes"] = k.SessionScopes
		}
		if k.ExpiresAt != nil {
			fields["expiresAt"] = *k.ExpiresAt
		}
		return audit.Change{AppID: k.AppID, TargetType: "APIKey", TargetID: k.ID, Fields: fields}, nil
	})
	if err != nil {
		return nil, "", err
	}
	// Read the key's edges (its app) outside of the committed transaction.
	return k.Unwrap(), token, nil
}

// Authenticator resolves bearer tokens to viewers. It caches lookups for a
// few seconds and records when each key was last used (at most once a
// minute per key). It is safe for concurrent use.
//
// Revocations reach it through Revoked, which forgets the key at once and
// tells the functions registered with OnRevoke (the server closes the key's
// live connections).
type Authenticator struct {
	client *ent.Client
	log    *slog.Logger
	ttl    time.Duration
	now    func() time.Time

	mu      sync.Mutex
	cache   map[[sha256.Size]byte]cached
	touched map[string]time.Time
	// pruned is when touched was last pruned of entries over a minute
	// old, which no longer hold anything back.
	pruned time.Time
	// gen counts revocations. A lookup caches what it read only if gen
	// did not change while it read: otherwise the key it read may have
	// been revoked since, and caching it would undo the revocation.
	gen      uint64
	onRevoke []func(keyID string)
	announce func(keyID string)
}

// AnnounceRevocations makes Revoke tell other processes sharing the
// database about each revocation, through f; they call Revoked.
func (a *Authenticator) AnnounceRevocations(f func(keyID string)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.announce = f
}

// ForgetAll drops every cached lookup: revocations by other processes may
// have been missed.
func (a *Authenticator) ForgetAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gen++
	clear(a.cache)
}

type cached struct {
	key     *ent.APIKey
	expires time.Time
}

// NewAuthenticator returns an Authenticator over client. ttl bounds how long
// a revocation made by another process can go unnoticed (revocations made
// through this process take effect at once); 0 means 5 seconds.
func NewAuthenticator(client *ent.Client, log *slog.Logger, ttl time.Duration) *Authenticator {
	if ttl <= 0 {
		ttl = 5 * time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	return &Authenticator{
		client:  client,
		log:     log,
		ttl:     ttl,
		now:     time.Now,
		cache:   make(map[[sha256.Size]byte]cached),
		touched: make(map[string]time.Time),
	}
}

// Authenticate returns the viewer for an "Authorization" header value
// ("Bearer hrld_…"; a bare token is accepted too). actAs, when not empty,
// is the app an admin key acts in (the X-Herald-App header).
func (a *Authenticator) Authenticate(ctx context.Context, authorization, actAs string) (tenant.Viewer, error) {
	token := strings.TrimSpace(authorization)
	if scheme, rest, ok := strings.Cut(token, " "); ok && strings.EqualFold(scheme, "Bearer") {
		token = strings.TrimSpace(rest)
	}
	if token == "" {
		return tenant.Viewer{}, fault.Unauthenticatedf("missing API key: send the header \"Authorization: Bearer <your hrld_ key>\"")
	}
	if !strings.HasPrefix(token, TokenPrefix) {
		return tenant.Viewer{}, fault.Unauthenticatedf("malformed API key: Herald keys start with %q", TokenPrefix)
	}
	k, err := a.lookup(ctx, token)
	if err != nil {
		return tenant.Viewer{}, err
	}
	if err := a.usable(k); err != nil {
		return tenant.Viewer{}, err
	}
	v := tenant.Viewer{AppID: k.AppID, KeyID: k.ID, KeyName: k.Name, Admin: k.Admin, Scopes: scope.FromStrings(k.Scopes), Portal: k.Kind == apikey.KindPORTAL_SESSION,
		SessionScopes: scope.FromStrings(k.SessionScopes)}
	if k.ExpiresAt != nil {
		v.ExpiresAt = *k.ExpiresAt
	}
	if actAs != "" && actAs != k.AppID {
		if !k.Admin {
			return tenant.Viewer{}, fault.Forbiddenf("only admin keys may act in another app (X-Herald-App); this key belongs to app %s", k.AppID)
		}
		ok, err := a.client.App.Query().Where(app.ID(actAs)).Exist(tenant.System(ctx))
		if err != nil {
			return tenant.Viewer{}, fmt.Errorf("look up app %s: %w", actAs, err)
		}
		if !ok {
			return tenant.Viewer{}, fault.NotFoundf("app %q (from X-Herald-App) does not exist", actAs)
		}
		v.AppID = actAs
	}
	a.touch(k.ID)
	return v, nil
}

// usable returns the error of a key that was revoked or has expired.
func (a *Authenticator) usable(k *ent.APIKey) error {
	what := fmt.Sprintf("API key %s…", k.Prefix)
	next := "create a new key"
	if k.Kind == apikey.KindPORTAL_SESSION {
		what, next = "this portal session", "ask for a new portal link"
	}
	if k.RevokedAt != nil {
		return &fault.Error{Code: fault.Unauthenticated, Reason: ReasonRevoked,
			Message: fmt.Sprintf("%s was revoked on %s: %s", what, k.RevokedAt.UTC().Format(time.RFC3339), next)}
	}
	if k.ExpiresAt != nil && !a.now().Before(*k.ExpiresAt) {
		return &fault.Error{Code: fault.Unauthenticated, Reason: ReasonExpired,
			Message: fmt.Sprintf("%s expired on %s: %s", what, k.ExpiresAt.UTC().Format(time.RFC3339), next)}
	}
	return nil
}

func (a *Authenticator) lookup(ctx context.Context, token string) (*ent.APIKey, error) {
	var h [sha256.Size]byte
	copy(h[:], HashToken(token))
	now := a.now()
	a.mu.Lock()
	c, ok := a.cache[h]
	gen := a.gen
	a.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.key, nil
	}
	k, err := a.client.APIKey.Query().Where(apikey.TokenHash(h[:])).Only(tenant.System(ctx))
	if ent.IsNotFound(err) {
		return nil, fault.Unauthenticatedf("unknown API key: check that you copied the whole token")
	}
	if err != nil {
		return nil, fmt.Errorf("look up api key: %w", err)
	}
	a.mu.Lock()
	if a.gen == gen {
		if len(a.cache) >= 10000 {
			clear(a.cache)
		}
		a.cache[h] = cached{key: k, expires: now.Add(a.ttl)}
	}
	a.mu.Unlock()
	return k, nil
}

// OnRevoke registers f to be called with the ID of every key revoked from
// now on (see Revoked), after the key's cached lookups are forgotten. f runs
// on the goroutine that reports the revocation and should return promptly.
func (a *Authenticator) OnRevoke(f func(keyID string)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.onRevoke = append(a.onRevoke, f)
}

// Revoked reports that a key was revoked, by this process (Revoke calls it)
// or by another one sharing the database. It forgets the key's cached
// lookups, so that its next use reads the revocation, keeps lookups in
// flight from caching what they read before it, and calls the functions
// registered with OnRevoke.
func (a *Authenticator) Revoked(keyID string) {
	a.mu.Lock()
	a.gen++
	for h, c := range a.cache {
		if c.key.ID == keyID {
			delete(a.cache, h)
		}
	}
	listeners := a.onRevoke
	a.mu.Unlock()
	for _, f := range listeners {
		f(keyID)
	}
}

// touch records the key's use, at most once a minute per key. The write is
// synchronous: it happens once a minute, and an asynchronous one could
// outlive the database.
func (a *Authenticator) touch(keyID string) {
	now := a.now()
	a.mu.Lock()
	last, ok := a.touched[keyID]
	if ok && now.Sub(last) < time.Minute {
		a.mu.Unlock()
		return
	}
	a.touched[keyID] = now
	if len(a.touched) > 1024 && now.Sub(a.pruned) > time.Minute {
		for id, t := range a.touched {
			if now.Sub(t) >= time.Minute {
				delete(a.touched, id)
			}
		}
		a.pruned = now
	}
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(tenant.System(context.Background()), 5*time.Second)
	defer cancel()
	err := a.client.APIKey.UpdateOneID(keyID).SetLastUsedAt(now.UTC()).Exec(ctx)
	if err != nil && !ent.IsNotFound(err) {
		a.log.Warn("record api key use", "key_id", keyID, "err", err)
	}
}

// Check reads the keys ids from the database, past every cache, and
// returns why each that no longer works does not (revoked, expired or
// gone), keyed by ID; keys that still work are missing from the result.
// Live connections are checked with it, so that a revocation another
// process made is noticed even if its notice was lost.
func (a *Authenticator) Check(ctx context.Context, ids []string) (map[string]error, error) {
	out := make(map[string]error)
	if len(ids) == 0 {
		return out, nil
	}
	keys, err := a.client.APIKey.Query().Where(apikey.IDIn(ids...)).All(tenant.System(ctx))
	if err != nil {
		return nil, fmt.Errorf("check api keys: %w", err)
	}
	found := make(map[string]bool, len(keys))
	for _, k := range keys {
		found[k.ID] = true
		if err := a.usable(k); err != nil {
			out[k.ID] = err
		}
	}
	for _, id := range ids {
		if !found[id] {
			out[id] = fault.Unauthenticatedf("this API key no longer exists")
		}
	}
	return out, nil
}

// Revoke revokes a key and reports it to Revoked, so that it stops working
// at once, also on live connections. Revoking a revoked key returns it
// unchanged (and reports it again).
func (a *Authenticator) Revoke(ctx context.Context, id string) (*ent.APIKey, error) {
	k, err := a.client.APIKey.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, fault.NotFoundf("API key %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("revoke api key %s: %w", id, err)
	}
	updated := false
	err = audit.Tx(ctx, a.client, func(tx *ent.Client) (audit.Change, error) {
		if k.RevokedAt == nil {
			k, err = tx.APIKey.UpdateOneID(id).SetRevokedAt(a.now().UTC()).Save(ctx)
			if err != nil {
				return audit.Change{}, fmt.Errorf("revoke api key %s: %w", id, err)
			}
			updated = true
		}
		return audit.Change{AppID: k.AppID, TargetType: "APIKey", TargetID: id,
			Fields: map[string]any{"name": k.Name, "revokedAt": *k.RevokedAt}}, nil
	})
	if err != nil {
		return nil, err
	}
	a.Revoked(id)
	a.announceRevoked(id)
	if updated {
		k = k.Unwrap() // read its edges outside of the committed transaction
	}
	return k, nil
}

// announceRevoked tells other processes about a revocation (see
// AnnounceRevocations).
func (a *Authenticator) announceRevoked(id string) {
	a.mu.Lock()
	announce := a.announce
	a.mu.Unlock()
	if announce != nil {
		announce(id)
	}
}

// RevokePortalSessions revokes every portal session of an app that still
// works, reports each to Revoked (closing its live connections) and to the
// other processes sharing the database, as Revoke does, and returns how
// many it revoked. Expired sessions are left as they are: they
// no longer work anyway.
func (a *Authenticator) RevokePortalSessions(ctx context.Context, appID string) (int, error) {
	now := a.now().UTC()
	ctx = tenant.System(ctx)
	live := []predicate.APIKey{
		apikey.AppID(appID),
		apikey.KindEQ(apikey.KindPORTAL_SESSION),
		apikey.RevokedAtIsNil(),
		apikey.ExpiresAtGT(now),
	}
	ids, err := a.client.APIKey.Query().Where(live...).IDs(ctx)
	if err != nil {
		return 0, fmt.Errorf("list portal sessions of app %s: %w", appID, err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	err = audit.Tx(ctx, a.client, func(tx *ent.Client) (audit.Change, error) {
		if _, err := tx.APIKey.Update().Where(apikey.IDIn(ids...), apikey.RevokedAtIsNil()).SetRevokedAt(now).Save(ctx); err != nil {
			return audit.Change{}, fmt.Errorf("revoke portal sessions of app %s: %w", appID, err)
		}
		return audit.Change{AppID: appID, TargetType: "App", TargetID: appID,
			Fields: map[string]any{"revokedSessions": ids, "count": len(ids)}}, nil
	})
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		a.Revoked(id)
		a.announceRevoked(id)
	}
	return len(ids), nil
}
