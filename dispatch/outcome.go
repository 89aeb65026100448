package dispatch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/heraldhq/herald/destination"
)

// Outcome classifies the result of one attempt.
type Outcome int

// Outcomes of an attempt.
const (
	// Success: the endpoint answered 2xx.
	Success Outcome = iota
	// Retryable: a timeout, network error, 408, 425, 429 or 5xx; the
	// delivery is tried again while attempts remain.
	Retryable
	// Permanent: any other answer (4xx, unfollowed 3xx) or a request that
	// can never succeed as configured; the delivery fails at once.
	Permanent
	// Interrupted: Herald cut the attempt off itself (shutdown). It says
	// nothing about the endpoint: it is not recorded, uses up no attempt,
	// and the delivery is simply due again.
	Interrupted
)

func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Retryable:
		return "retryable"
	case Interrupted:
		return "interrupted"
	default:
		return "permanent"
	}
}

// Classify returns the outcome of an HTTP status code.
func Classify(status int) Outcome {
	switch {
	case status >= 200 && status < 300:
		return Success
	case status == http.StatusRequestTimeout, status == http.StatusTooEarly,
		status == http.StatusTooManyRequests, status >= 500:
		return Retryable
	default:
		return Permanent
	}
}

// errTooManyRedirects is returned when a redirect chain is longer than
// MaxRedirects.
var errTooManyRedirects = errors.New("too many redirects")

// classifyError returns the outcome of a request that got no HTTP answer and
// a message for the attempt log.
func classifyError(err error, timeout time.Duration) (Outcome, string) {
	var blocked *destination.BlockedError
	var urlErr *destination.URLError
	switch {
	case errors.As(err, &blocked):
		return Permanent, fmt.Sprintf("destination not allowed: %v", blocked)
	case errors.As(err, &urlErr):
		return Permanent, urlErr.Error()
	case errors.Is(err, errTooManyRedirects):
		return Permanent, err.Error()
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
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
	return Retryable, cleanError(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// cleanError drops the "Post \"url\": " prefix net/http adds, which repeats
// what the attempt already records.
func cleanError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// RetryAfter parses a Retry-After header (delay-seconds or an HTTP date)
// relative to now. It returns 0 when the header is absent or unusable.
func RetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	const maxSecs = int64(365 * 24 * time.Hour / time.Second)
	secs, err := strconv.ParseInt(h, 10, 64)
	if errors.Is(err, strconv.ErrRange) && h[0] != '-' {
		secs, err = maxSecs, nil // more digits than int64 holds: "a long time"
	}
	if err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, maxSecs)) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
