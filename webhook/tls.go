package webhook

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"time"

	"github.com/heraldhq/herald/fault"
)

// TLS is an endpoint's mutual TLS: the client certificate Herald presents
// and, if CACertificates is set, the only roots it trusts for the
// endpoint's server certificate. ClientKey is a secret (package secret
// stores and shows it).
type TLS struct {
	// ClientCertificate is the PEM certificate (its chain may follow).
	ClientCertificate string `json:"clientCertificate,omitempty"`
	// ClientKey is the certificate's PEM private key.
	ClientKey string `json:"clientKey,omitempty"`
	// CACertificates are PEM certificates of the roots to trust ("": the
	// system's).
	CACertificates string `json:"caCertificates,omitempty"`
	// NotAfter is when the client certificate expires, read from it by
	// Check.
	NotAfter *time.Time `json:"notAfter,omitempty"`
}

// CertificateWarning is how long before its client certificate expires an
// endpoint says so (Endpoint.tls.expiresSoon and a webhook.* event).
const CertificateWarning = 14 * 24 * time.Hour

// MaxPEM bounds each PEM field of TLS (a certificate chain or a few roots).
const MaxPEM = 32 << 10

// IsZero reports whether t configures nothing.
func (t TLS) IsZero() bool {
	return t.ClientCertificate == "" && t.ClientKey == "" && t.CACertificates == ""
}

// Check validates a TLS configuration and returns it with NotAfter set and
// PEM trimmed: the certificate and key must parse and match, the roots must
// parse. Errors are BAD_USER_INPUT faults naming the field
// ("clientKey"), relative to the tls input.
func (t TLS) Check(now time.Time) (TLS, error) {
	t.ClientCertificate = strings.TrimSpace(t.ClientCertificate)
	t.ClientKey = strings.TrimSpace(t.ClientKey)
	t.CACertificates = strings.TrimSpace(t.CACertificates)
	t.NotAfter = nil
	for _, f := range []struct{ name, v string }{
		{"clientCertificate", t.ClientCertificate}, {"clientKey", t.ClientKey}, {"caCertificates", t.CACertificates},
	} {
		if len(f.v) > MaxPEM {
			return TLS{}, fault.Invalid(f.name, "is %d bytes; the limit is %d", len(f.v), MaxPEM)
		}
	}
	switch {
	case t.ClientCertificate == "" && t.ClientKey != "":
		return TLS{}, fault.Invalid("clientCertificate", "is required with clientKey")
	case t.ClientCertificate != "" && t.ClientKey == "":
		return TLS{}, fault.Invalid("clientKey", "is required with clientCertificate: the certificate's PEM private key")
	}
	if t.ClientCertificate != "" {
		certs, err := parseCertificates(t.ClientCertificate)
		if err != nil {
			return TLS{}, fault.Invalid("clientCertificate", "%s", err.Error())
		}
		if b, _ := pem.Decode([]byte(t.ClientKey)); b == nil || !strings.Contains(b.Type, "PRIVATE KEY") {
			return TLS{}, fault.Invalid("clientKey", "is not a PEM private key (-----BEGIN PRIVATE KEY-----)")
		}
		if _, err := tls.X509KeyPair([]byte(t.ClientCertificate), []byte(t.ClientKey)); err != nil {
			msg := err.Error()
			if strings.Contains(msg, "does not match") {
				return TLS{}, fault.Invalid("clientKey", "does not match clientCertificate: give the private key of that certificate")
			}
			return TLS{}, fault.Invalid("clientKey", "cannot be used with clientCertificate: %s", strings.TrimPrefix(msg, "tls: "))
		}
		leaf := certs[0]
		if !now.Before(leaf.NotAfter) {
			return TLS{}, fault.Invalid("clientCertificate", "expired on %s", leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		na := leaf.NotAfter.UTC()
		t.NotAfter = &na
	}
	if t.CACertificates != "" {
		if _, err := parseCertificates(t.CACertificates); err != nil {
			return TLS{}, fault.Invalid("caCertificates", "%s", err.Error())
		}
	}
	return t, nil
}

// parseCertificates parses the PEM certificates of s, refusing anything
// else in it.
func parseCertificates(s string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fault.Invalid("", "holds a PEM %q block where only certificates belong", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fault.Invalid("", "holds a certificate that does not parse: %s", strings.TrimPrefix(err.Error(), "x509: "))
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fault.Invalid("", "is not a PEM certificate (-----BEGIN CERTIFICATE-----)")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, fault.Invalid("", "has text after its last PEM block")
	}
	return out, nil
}

// Config returns the tls.Config of the endpoint's connections: its client
// certificate, and its roots if set (nil: the system's).
func (t TLS) Config() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.ClientCertificate != "" {
		pair, err := tls.X509KeyPair([]byte(t.ClientCertificate), []byte(t.ClientKey))
		if err != nil {
			return nil, err
		}
		c.Certificates = []tls.Certificate{pair}
	}
	if t.CACertificates != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(t.CACertificates)) {
			return nil, fault.Invalid("caCertificates", "holds no usable certificate")
		}
		c.RootCAs = pool
	}
	return c, nil
}

// ExpiresSoon reports whether the client certificate expires within
// CertificateWarning of now.
func (t TLS) ExpiresSoon(now time.Time) bool {
	return t.NotAfter != nil && t.NotAfter.Sub(now) < CertificateWarning
}
