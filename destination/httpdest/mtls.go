package httpdest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"

	"github.com/heraldhq/herald/webhook"
)

// tlsKey returns the pool key of a mutual TLS configuration: a hash of its
// certificate, key and roots, so that the key material itself is never a
// map key and endpoints with the same certificate share a transport.
func tlsKey(t webhook.TLS) string {
	h := sha256.New()
	for _, s := range []string{t.ClientCertificate, t.ClientKey, t.CACertificates} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// openTLS returns a transport that presents the target's client
// certificate and trusts its roots, otherwise like the shared one (the
// policy's dialer, the egress proxy, the limits).
func (t *target) openTLS(context.Context) (*http.Transport, error) {
	cfg, err := t.tls.Config()
	if err != nil {
		return nil, fmt.Errorf("the endpoint's certificate or key cannot be used: %w", err)
	}
	tr := t.d.base.Clone()
	tr.TLSClientConfig = cfg
	return tr, nil
}
