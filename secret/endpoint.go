package secret

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/heraldhq/herald/webhook"
)

// Endpoint holds the columns of an endpoint row that carry secrets: sealed
// as stored, or in the clear as Herald uses them. What is secret in them:
// the signing secrets, the auth configuration's token, password,
// headerValue, secret and clientSecret, the values of secret headers
// (IsSecretHeader), the destination's fields named in DestinationSecrets,
// and the TLS client key.
type Endpoint struct {
	// ID is the endpoint's: every sealed value is bound to it.
	ID string
	// Signing is the signing secret (whsec_…) or Ed25519 private key
	// (whsk_…); PreviousSigning the one a rotation still signs with
	// ("" if none).
	Signing, PreviousSigning string
	Auth                     webhook.Auth
	Headers                  []webhook.Header
	// Destination is a broker's configuration (a JSON object), whose
	// fields named in DestinationSecrets are secrets (destination.Spec's
	// Secrets).
	Destination        json.RawMessage
	DestinationSecrets []string
	// TLS is the endpoint's mutual TLS (nil: none).
	TLS *webhook.TLS
}

// ad is what a field's sealed value is bound to.
func (e *Endpoint) ad(field string) string { return "endpoint/" + e.ID + "/" + field }

// SealEndpoint returns e with every secret sealed under the primary key.
// e must hold its secrets in the clear (sealed values are opened first, so
// that sealing twice changes nothing but the key).
func (r *Keyring) SealEndpoint(e Endpoint) (Endpoint, error) {
	return r.mapEndpoint(e, func(v, ad string) (string, error) {
		plain, err := r.Open(v, ad)
		if err != nil {
			return "", err
		}
		return r.Seal(plain, ad), nil
	})
}

// OpenEndpoint returns e with every secret in the clear. Values stored
// before Herald encrypted secrets are returned as they are.
func (r *Keyring) OpenEndpoint(e Endpoint) (Endpoint, error) {
	return r.mapEndpoint(e, r.Open)
}

// mapEndpoint returns a copy of e with fn applied to each secret, given
// its associated data.
func (r *Keyring) mapEndpoint(e Endpoint, fn func(v, ad string) (string, error)) (Endpoint, error) {
	if e.ID == "" {
		return e, fmt.Errorf("secret: endpoint without an id")
	}
	var err error
	apply := func(v *string, field string) {
		if err != nil || *v == "" {
			return
		}
		var out string
		if out, err = fn(*v, e.ad(field)); err == nil {
			*v = out
		}
	}
	apply(&e.Signing, "secret")
	apply(&e.PreviousSigning, "previousSecret")
	for _, f := range authFields(&e.Auth) {
		apply(f.v, "auth."+f.name)
	}
	if len(e.Headers) > 0 {
		hs := slices.Clone(e.Headers)
		for i := range hs {
			if IsSecretHeader(hs[i]) {
				hs[i].Secret = true
				apply(&hs[i].Value, "headers."+strings.ToLower(hs[i].Name))
			}
		}
		e.Headers = hs
	}
	if e.TLS != nil {
		t := *e.TLS
		apply(&t.ClientKey, "tls.clientKey")
		e.TLS = &t
	}
	if err != nil {
		return Endpoint{}, err
	}
	if len(e.Destination) > 0 && len(e.DestinationSecrets) > 0 {
		cfg, derr := mapConfig(e.Destination, e.DestinationSecrets, func(name, v string) (string, error) {
			return fn(v, e.ad("destination."+name))
		})
		if derr != nil {
			return Endpoint{}, derr
		}
		e.Destination = cfg
	}
	return e, nil
}

// mapConfig applies fn to the string values of the named fields of a JSON
// object, leaving every other value as it is.
func mapConfig(cfg json.RawMessage, names []string, fn func(name, v string) (string, error)) (json.RawMessage, error) {
	var vals map[string]json.RawMessage
	if err := json.Unmarshal(cfg, &vals); err != nil {
		return nil, fmt.Errorf("secret: destination configuration is not a JSON object: %w", err)
	}
	changed := false
	for _, name := range names {
		raw, ok := vals[name]
		if !ok {
			continue
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil || s == "" {
			continue // not a string: nothing to seal
		}
		out, err := fn(name, s)
		if err != nil {
			return nil, err
		}
		b, _ := json.Marshal(out)
		vals[name] = b
		changed = true
	}
	if !changed {
		return cfg, nil
	}
	b, err := json.Marshal(vals)
	if err != nil {
		return nil, fmt.Errorf("secret: encode destination configuration: %w", err)
	}
	return b, nil
}

// Values returns every secret of e that is set, in the clear as e holds
// them, for tests and tools that check where secrets end up.
func (e *Endpoint) Values() []string {
	var out []string
	add := func(v string) {
		if v != "" {
			out = append(out, v)
		}
	}
	add(e.Signing)
	add(e.PreviousSigning)
	a := e.Auth
	for _, f := range authFields(&a) {
		add(*f.v)
	}
	for _, h := range e.Headers {
		if IsSecretHeader(h) {
			add(h.Value)
		}
	}
	if e.TLS != nil {
		add(e.TLS.ClientKey)
	}
	if len(e.Destination) > 0 {
		_, _ = mapConfig(e.Destination, e.DestinationSecrets, func(_, v string) (string, error) { add(v); return v, nil })
	}
	return out
}
