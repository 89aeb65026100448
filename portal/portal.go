// Package portal manages Herald's customer portal: the page at
// /portal/<app id> where a platform's customer manages their own webhooks.
//
// A portal session is an API key of kind PORTAL_SESSION: scoped to what a
// customer may do (scope.Portal, or scope.PortalReadOnly), bound to one
// app, and always expiring (default 1 h, at most 7 days). Its token travels
// in the portal URL's fragment, which browsers never send to a server.
//
// Each app has portal settings: the name and accent colour the page shows,
// its theme, and the origins that may embed it in a frame (sent as the
// page's CSP frame-ancestors; without any, nothing may frame it).
package portal

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldhq/herald/audit"
	"github.com/heraldhq/herald/auth"
	"github.com/heraldhq/herald/db"
	"github.com/heraldhq/herald/ent"
	"github.com/heraldhq/herald/ent/apikey"
	"github.com/heraldhq/herald/ent/app"
	"github.com/heraldhq/herald/fault"
	"github.com/heraldhq/herald/quota"
	"github.com/heraldhq/herald/scope"
	"github.com/heraldhq/herald/tenant"
)

// Session lifetimes.
const (
	// DefaultTTL is how long a session works when the caller does not say.
	DefaultTTL = time.Hour
	// MaxTTL is the longest session.
	MaxTTL = 7 * 24 * time.Hour
	// MinTTL is the shortest session.
	MinTTL = time.Second
)

// Path is the URL path of the portal page of an app, without the token.
func Path(appID string) string { return "/portal/" + url.PathEscape(appID) }

// SessionInput describes a new portal session.
type SessionInput struct {
	// AppID is the app the session works in; "" means the caller's.
	AppID string
	// AppField names the argument AppID came from in errors (default
	// "appId").
	AppField string
	// Name labels the session in key lists, such as the customer's name
	// (default "Portal session").
	Name string
	// TTL is how long the session works (default DefaultTTL).
	TTL time.Duration
	// ReadOnly drops every write from the session's scopes.
	ReadOnly bool
	// Scopes, if not nil, are what the session may do: a subset of what
	// the creating credential may give (scope.Grantable).
	Scopes []scope.Scope
}

// Session is a new portal session.
type Session struct {
	// Key is the session's key record (kind PORTAL_SESSION).
	Key *ent.APIKey
	// Token is the session's credential; it is not stored.
	Token string
	// Path is the portal page's path with the token in its fragment.
	Path string
}

// Service creates and revokes portal sessions and keeps portal settings.
type Service struct {
	// Client is the database.
	Client *ent.Client
	// Auth revokes sessions, so that their live connections close.
	Auth *auth.Authenticator
	// Rand is the source of tokens (default crypto/rand).
	Rand io.Reader
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// targetApp returns the app a caller manages portal sessions or settings
// of: appID when given (admin keys may name any app, others only their
// own), else the caller's.
func targetApp(ctx context.Context, client *ent.Client, appID, field string) (tenant.Viewer, string, error) {
	v, ok := tenant.FromContext(ctx)
	if !ok {
		return v, "", tenant.ErrNoViewer
	}
	if appID == "" || appID == v.AppID {
		return v, v.AppID, nil
	}
	if !v.Admin {
		return v, "", fault.Forbiddenf("this key belongs to app %s and may manage only that app's portal; use an admin key for app %s", v.AppID, appID)
	}
	ok, err := client.App.Query().Where(app.ID(appID)).Exist(tenant.System(ctx))
	if err != nil {
		return v, "", fmt.Errorf("look up app %s: %w", appID, err)
	}
	if !ok {
		return v, "", fault.Invalid(field, "app %q does not exist", appID)
	}
	return v, appID, nil
}

// CreateSession creates a portal session. Admin keys may create one for
// any app, other keys for their own app.
//
// A credential never creates a session that may do more than it may itself,
// unless its key says so (APIKey.portalSessionScopes): the session's scopes
// are within scope.Grantable, and it expires no later than the key.
func (s *Service) CreateSession(ctx context.Context, in SessionInput) (*Session, error) {
	field := in.AppField
	if field == "" {
		field = "appId"
	}
	v, appID, err := targetApp(ctx, s.Client, in.AppID, field)
	if err != nil {
		return nil, err
	}
	ttl := in.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < MinTTL || ttl > MaxTTL {
		return nil, fault.Invalid("input.expiresIn", "must be between 1s and 168h (7 days), got %s", ttl)
	}
	name := strings.TrimSpace(in.Name)
	if name == "" {
		name = "Portal session"
	}
	scopes, err := sessionScopes(v, in)
	if err != nil {
		return nil, err
	}
	expires := s.now().Add(ttl)
	if !v.ExpiresAt.IsZero() && v.ExpiresAt.Before(expires) {
		if in.TTL != 0 {
			return nil, fault.Invalid("input.expiresIn", "would outlive the key that creates the session, which expires at %s: ask for at most %s", v.ExpiresAt.UTC().Format(time.RFC3339), v.ExpiresAt.Sub(s.now()).Round(time.Second))
		}
		expires = v.ExpiresAt
	}
	var k *ent.APIKey
	var token string
	// The key is written by Herald on the caller's behalf: app keys may not
	// create keys themselves, but may open their app's portal.
	err = db.WithTx(tenant.System(ctx), s.Client, func(tx *ent.Client) error {
		if err := quota.Lock(ctx, tx, appID); err != nil {
			return err
		}
		if err := quota.Check(ctx, tx, appID, quota.PortalSessions, 1, s.now()); err != nil {
			return err
		}
		var err error
		k, token, err = auth.CreateKey(tenant.System(ctx), tx, auth.KeyInput{
			AppID:     appID,
			Name:      name,
			Scopes:    scopes,
			ExpiresAt: expires,
			Portal:    true,
		}, s.Rand)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &Session{Key: k, Token: token, Path: Path(appID) + "#token=" + token}, nil
}

// sessionScopes returns the scopes of a new portal session: those asked
// for, else the portal's (read-only ones with ReadOnly), within what the
// creating credential may give.
func sessionScopes(v tenant.Viewer, in SessionInput) ([]scope.Scope, error) {
	grantable := scope.Grantable(v.Scopes, v.SessionScopes)
	want := in.Scopes
	if want == nil {
		if len(grantable) == 0 {
			return nil, fault.Forbiddenf("this key may create portal sessions but may give them nothing: a key with only PORTAL_SESSIONS gives sessions no more than it may do itself; create the key with portalSessionScopes (such as [CATALOG_READ, ENDPOINTS_WRITE, EVENTS_READ, DELIVERIES_WRITE]), or use a key with full access")
		}
		want = grantable
		if in.ReadOnly {
			want = nil
			for _, s := range grantable {
				if slices.Contains(scope.PortalReadOnly, s) {
					want = append(want, s)
				}
			}
			if len(want) == 0 {
				want = []scope.Scope{scope.CatalogRead}
			}
		}
	}
	norm, err := scope.Normalize(want)
	if err != nil {
		return nil, fault.Invalid("input.scopes", "%s", err.Error())
	}
	for _, s := range norm {
		if !slices.Contains(scope.Portal, s) {
			return nil, fault.Invalid("input.scopes", "%s is not a portal scope: portal sessions may have %s", s, scope.Join(scope.Portal))
		}
		if in.ReadOnly && !slices.Contains(scope.PortalReadOnly, s) {
			return nil, fault.Invalid("input.scopes", "%s writes, and the session is readOnly: leave it out, or readOnly", s)
		}
		if !scope.Allows(grantable, s) {
			return nil, &fault.Error{Code: fault.Forbidden, Reason: "SCOPE", Field: "input.scopes", Message: fmt.Sprintf(
				"this key may not give portal sessions %s: it may give %s (its own scopes and its portalSessionScopes)", s, scope.Join(grantable))}
		}
	}
	return norm, nil
}

// RevokeSession revokes one portal session, which stops working at once,
// also on its live connections.
func (s *Service) RevokeSession(ctx context.Context, id string) (*ent.APIKey, error) {
	v, ok := tenant.FromContext(ctx)
	if !ok {
		return nil, tenant.ErrNoViewer
	}
	k, err := s.Client.APIKey.Get(tenant.System(ctx), id)
	if ent.IsNotFound(err) || (err == nil && !v.Admin && k.AppID != v.AppID) {
		return nil, fault.NotFoundf("portal session %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("revoke portal session %s: %w", id, err)
	}
	if k.Kind != apikey.KindPORTAL_SESSION {
		return nil, fault.Invalid("id", "%s is an API key, not a portal session: revoke it with revokeAPIKey", id)
	}
	return s.Auth.Revoke(tenant.System(ctx), id)
}

// RevokeSessions revokes every working portal session of an app (the
// caller's when appID is "") and returns how many.
func (s *Service) RevokeSessions(ctx context.Context, appID string) (int, error) {
	_, appID, err := targetApp(ctx, s.Client, appID, "appId")
	if err != nil {
		return 0, err
	}
	return s.Auth.RevokePortalSessions(ctx, appID)
}

// Settings are an app's portal settings.
type Settings struct {
	// DisplayName is the name the portal shows (default: the app's name).
	DisplayName string
	// AccentColor is a "#rrggbb" colour for buttons and links ("": Herald's).
	AccentColor string
	// Theme is AUTO (the browser's preference), LIGHT or DARK.
	Theme string
	// AllowedOrigins may embed the portal in a frame.
	AllowedOrigins []string
}

// SettingsOf returns an app's portal settings.
func SettingsOf(a *ent.App) Settings {
	name := a.PortalDisplayName
	if name == "" {
		name = a.Name
	}
	return Settings{
		DisplayName:    name,
		AccentColor:    a.PortalAccentColor,
		Theme:          a.PortalTheme.String(),
		AllowedOrigins: slices.Clone(a.PortalAllowedOrigins),
	}
}

// SettingsInput changes portal settings; nil fields stay as they are.
type SettingsInput struct {
	DisplayName    *string
	AccentColor    *string
	Theme          *string
	AllowedOrigins []string // nil: unchanged; empty: none
}

var hexColor = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// UpdateSettings changes the portal settings of an app (the caller's when
// appID is ""; admin keys may name any app).
func (s *Service) UpdateSettings(ctx context.Context, appID string, in SettingsInput) (*ent.App, error) {
	_, appID, err := targetApp(ctx, s.Client, appID, "appId")
	if err != nil {
		return nil, err
	}
	// Apps are changed by admin keys only (the App schema's hook); an app
	// key may change its own app's portal settings, checked above.
	sys := tenant.System(ctx)
	fields := map[string]any{}
	var set []func(*ent.AppUpdateOne)
	if in.DisplayName != nil {
		name := strings.TrimSpace(*in.DisplayName)
		if utf8.RuneCountInString(name) > 100 {
			return nil, fault.Invalid("input.displayName", "must be at most 100 characters")
		}
		fields["displayName"] = name
		set = append(set, func(u *ent.AppUpdateOne) { u.SetPortalDisplayName(name) })
	}
	if in.AccentColor != nil {
		c := strings.TrimSpace(*in.AccentColor)
		if c != "" && !hexColor.MatchString(c) {
			return nil, fault.Invalid("input.accentColor", "%q is not a colour: use #rrggbb, such as #0a7c5a, or \"\" for Herald's", c)
		}
		c = strings.ToLower(c)
		fields["accentColor"] = c
		set = append(set, func(u *ent.AppUpdateOne) { u.SetPortalAccentColor(c) })
	}
	if in.Theme != nil {
		theme := app.PortalTheme(*in.Theme)
		fields["theme"] = theme.String()
		set = append(set, func(u *ent.AppUpdateOne) { u.SetPortalTheme(theme) })
	}
	if in.AllowedOrigins != nil {
		origins := make([]string, 0, len(in.AllowedOrigins))
		for i, o := range in.AllowedOrigins {
			norm, err := NormalizeOrigin(o)
			if err != nil {
				return nil, fault.Invalid(fmt.Sprintf("input.allowedOrigins[%d]", i), "%s", err.Error())
			}
			if !slices.Contains(origins, norm) {
				origins = append(origins, norm)
			}
		}
		if len(origins) > 20 {
			return nil, fault.Invalid("input.allowedOrigins", "at most 20 origins, got %d", len(origins))
		}
		fields["allowedOrigins"] = origins
		set = append(set, func(u *ent.AppUpdateOne) { u.SetPortalAllowedOrigins(origins) })
	}
	var a *ent.App
	err = audit.Tx(sys, s.Client, func(tx *ent.Client) (audit.Change, error) {
		u := tx.App.UpdateOneID(appID)
		for _, f := range set {
			f(u)
		}
		var err error
		if a, err = u.Save(sys); err != nil {
			return audit.Change{}, err
		}
		return audit.Change{AppID: appID, TargetType: "App", TargetID: appID, Fields: fields}, nil
	})
	if ent.IsNotFound(err) {
		return nil, fault.NotFoundf("app %q not found", appID)
	}
	if err != nil {
		return nil, fmt.Errorf("update portal settings of app %s: %w", appID, err)
	}
	return a, nil
}

// originHost matches the host of an allowed origin: a DNS name, optionally
// with a leading "*." (any subdomain, as CSP allows), or an IPv4 address.
var originHost = regexp.MustCompile(`^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)

// NormalizeOrigin checks that o is an origin a frame-ancestors directive
// can name safely ("https://app.example.com", "http://localhost:3000",
// "https://*.example.com") and returns it in lower case.
func NormalizeOrigin(o string) (string, error) {
	o = strings.TrimSpace(o)
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%q is not an origin (%s): use scheme://host[:port], such as https://app.example.com", o, why)
	}
	scheme, rest, ok := strings.Cut(o, "://")
	if !ok {
		return bad("no scheme")
	}
	scheme = strings.ToLower(scheme)
	if scheme != "https" && scheme != "http" {
		return bad("the scheme must be https or http")
	}
	host, port, hasPort := strings.Cut(strings.ToLower(rest), ":")
	if !originHost.MatchString(host) {
		return bad("no valid host, or a path, query or user")
	}
	if hasPort {
		if len(port) == 0 || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return bad("bad port")
		}
		return scheme + "://" + host + ":" + port, nil
	}
	return scheme + "://" + host, nil
}

// AllowedOrigins returns the origins that may frame an app's portal, none
// for an app that does not exist.
func AllowedOrigins(ctx context.Context, client *ent.Client, appID string) ([]string, error) {
	a, err := client.App.Query().Where(app.ID(appID)).Select(app.FieldPortalAllowedOrigins).Only(tenant.System(ctx))
	if ent.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read portal origins of app %s: %w", appID, err)
	}
	return a.PortalAllowedOrigins, nil
}
