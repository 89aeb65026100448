package destination

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ClassifyNetError returns the outcome of an attempt that failed without
// an answer from the endpoint, and a message for the attempt's log: a
// failure of the egress proxy is Deferred (Herald's side failed); a
// destination the policy refuses or an invalid URL is Permanent; a
// timeout (within timeout), a refused or reset connection, a failed DNS
// lookup, a TLS handshake the endpoint or Herald refused, or any other
// network error is Retryable. Every driver uses it for the errors its
// client returns from the network.
func ClassifyNetError(err error, timeout time.Duration) (Outcome, string) {
	var blocked *BlockedError
	var urlErr *URLError
	var proxyErr *ProxyError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr x509.CertificateInvalidError
	var alert tls.AlertError
	switch {
	case errors.As(err, &proxyErr):
		return Deferred, proxyErr.Error()
	case errors.As(err, &unknownCA):
		return Retryable, "TLS: the endpoint's certificate is not trusted: " + unknownCA.Error()
	case errors.As(err, &hostErr):
		return Retryable, "TLS: the endpoint's certificate is not for this host: " + hostErr.Error()
	case errors.As(err, &certErr):
		return Retryable, "TLS: the endpoint's certificate is not valid: " + certErr.Error()
	case errors.As(err, &alert), strings.Contains(err.Error(), "remote error: tls:"):
		return Retryable, "TLS: the endpoint refused the handshake (" + CleanError(err) + "): does it require a client certificate Herald does not have?"
	case errors.As(err, &blocked):
		return Permanent, fmt.Sprintf("destination not allowed: %v", blocked)
	case errors.As(err, &urlErr):
		return Permanent, urlErr.Error()
	case errors.Is(err, context.DeadlineExceeded), IsTimeout(err):
		return Retryable, fmt.Sprintf("timeout: no complete response within %s", timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return Retryable, "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return Retryable, "connection reset by peer"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return Retryable, fmt.Sprintf("DNS lookup of %s failed: %s", dnsErr.Name, dnsErr.Err)
	}
	return Retryable, CleanError(err)
}

// IsTimeout reports whether err is a network timeout.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// CleanError drops the "Post \"url\": " prefix net/http adds, which
// repeats what the attempt already records.
func CleanError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}
