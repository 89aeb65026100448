package endpoints

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/secret"
	"github.com/heraldhq/herald/webhook"
)

// changes describes what changed from base to c for the audit log: each
// changed field with its new value, a secret written secret.Changed (an
// auth's token, a secret header's value, a broker's password, a TLS key),
// never the value. From an empty base it describes a new endpoint.
func changes(base, c config, reg *destination.Registry) map[string]any {
	out := map[string]any{}
	set := func(name string, old, v any) {
		if !reflect.DeepEqual(old, v) {
			out[name] = v
		}
	}
	set("type", string(base.typ), string(c.typ))
	set("name", base.name, c.name)
	set("description", base.description, c.description)
	set("url", base.url, redactURL(c.url))
	set("eventTypes", base.eventTypes, c.eventTypes)
	set("retryPolicy", base.retry, c.retry)
	set("timeout", base.timeout.String(), c.timeout.String())
	set("ordering", string(base.ordering), string(c.ordering))
	set("rateLimit", base.rateLimit, c.rateLimit)
	set("isActive", base.isActive, c.isActive)
	if !bytes.Equal(base.filter, c.filter) {
		out["filter"] = json.RawMessage(c.filter)
		if c.filter == nil {
			out["filter"] = nil
		}
	}
	if !reflect.DeepEqual(base.transformation, c.transformation) {
		out["transformation"] = c.transformation
	}
	if a := authChanges(base.auth, c.auth); a != nil {
		out["auth"] = a
	}
	if !slices.Equal(base.headers, c.headers) {
		hs := make([]map[string]any, len(c.headers))
		for i, h := range c.headers {
			v := h.Value
			if secret.IsSecretHeader(h) {
				v = secret.Changed
				if i := slices.IndexFunc(base.headers, func(o webhook.Header) bool { return o.Name == h.Name }); i >= 0 && base.headers[i].Value == h.Value {
					v = "unchanged"
				}
			}
			hs[i] = map[string]any{"name": h.Name, "value": v, "secret": secret.IsSecretHeader(h)}
		}
		out["headers"] = hs
	}
	if !bytes.Equal(base.destination, c.destination) {
		var names []string
		if spec, ok := reg.Lookup(c.typ); ok {
			names = spec.Secrets()
		}
		out["destination"] = configChanges(base.destination, c.destination, names)
	}
	if !reflect.DeepEqual(base.tls, c.tls) {
		if c.tls == nil {
			out["tls"] = nil
		} else {
			t := map[string]any{"clientCertificate": secret.Changed, "notAfter": c.tls.NotAfter}
			if base.tls == nil || base.tls.ClientKey != c.tls.ClientKey {
				t["clientKey"] = secret.Changed
			}
			if c.tls.CACertificates != "" && (base.tls == nil || base.tls.CACertificates != c.tls.CACertificates) {
				t["caCertificates"] = secret.Changed
			}
			if base.tls != nil && base.tls.ClientCertificate == c.tls.ClientCertificate {
				delete(t, "clientCertificate")
			}
			out["tls"] = t
		}
	}
	return out
}

// authChanges describes a changed auth configuration (nil: unchanged):
// its identifiers as they are, its secrets as "changed" when they changed.
func authChanges(old, a webhook.Auth) map[string]any {
	if reflect.DeepEqual(old, a) {
		return nil
	}
	out := map[string]any{"type": string(a.Type)}
	for name, v := range map[string]string{"username": a.Username, "headerName": a.HeaderName, "tokenUrl": a.TokenURL,
		"clientId": a.ClientID, "audience": a.Audience} {
		if v != "" {
			out[name] = v
		}
	}
	if len(a.Scopes) > 0 {
		out["scopes"] = a.Scopes
	}
	for name, pair := range map[string][2]string{"token": {old.Token, a.Token}, "password": {old.Password, a.Password},
		"headerValue": {old.HeaderValue, a.HeaderValue}, "secret": {old.Secret, a.Secret}, "clientSecret": {old.ClientSecret, a.ClientSecret}} {
		if pair[1] != "" && pair[0] != pair[1] {
			out[name] = secret.Changed
		}
	}
	return out
}

// configChanges describes a broker configuration: its values, the named
// secrets as "changed" when they changed.
func configChanges(old, cfg json.RawMessage, secrets []string) map[string]any {
	var before, after map[string]any
	_ = json.Unmarshal(old, &before)
	_ = json.Unmarshal(cfg, &after)
	for _, name := range secrets {
		if v, ok := after[name]; ok {
			if reflect.DeepEqual(before[name], v) {
				delete(after, name)
			} else {
				after[name] = secret.Changed
			}
		}
	}
	return after
}
