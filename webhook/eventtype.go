package webhook

import (
	"regexp"
	"strings"

	"github.com/heraldhq/herald/fault"
)

// MaxEventTypeLen is the longest event type name accepted.
const MaxEventTypeLen = 128

// Wildcard subscribes an endpoint to every event type of the app's own:
// it does not match Herald's reserved types (see Reserved).
const Wildcard = "*"

// ReservedPrefix is the namespace of the event types only Herald
// publishes, about endpoints (webhook.failed, webhook.disabled).
const ReservedPrefix = "webhook."

// Reserved reports whether an event type belongs to Herald's reserved
// namespace. Only patterns that name it match such a type ("webhook.failed"
// or "webhook.*"), never "*": an endpoint gets Herald's reports about
// endpoints only if it asks for them.
func Reserved(name string) bool { return strings.HasPrefix(name, ReservedPrefix) }

var eventTypeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+$`)

// ValidEventTypeName reports whether name is a well-formed event type name:
// two or more dot-separated segments of lower-case letters, digits, '_' and
// '-', such as "order.created" or "email.link_clicked".
func ValidEventTypeName(name string) bool {
	return len(name) <= MaxEventTypeLen && eventTypeRE.MatchString(name)
}

// CheckEventTypeName returns a BAD_USER_INPUT fault for field if name is not
// a valid event type name.
func CheckEventTypeName(field, name string) error {
	if !ValidEventTypeName(name) {
		return fault.Invalid(field, "%q is not a valid event type name: use two or more dot-separated lower-case segments such as \"order.created\" (letters, digits, '_' and '-', at most %d characters)", name, MaxEventTypeLen)
	}
	return nil
}

// IsWildcard reports whether pattern matches more than one event type ("*" or
// a prefix pattern such as "order.*").
func IsWildcard(pattern string) bool {
	return pattern == Wildcard || strings.HasSuffix(pattern, ".*")
}

// ValidPattern reports whether pattern is "*", an event type name, or a prefix
// pattern: one or more segments followed by ".*" ("order.*").
func ValidPattern(pattern string) bool {
	if pattern == Wildcard {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, ".*"); ok {
		// A prefix may be a single segment, so validate it with a dummy
		// second segment.
		return ValidEventTypeName(prefix + ".x")
	}
	return ValidEventTypeName(pattern)
}

// Match reports whether the event type name matches pattern.
func Match(pattern, name string) bool {
	switch {
	case pattern == Wildcard:
		return !Reserved(name)
	case strings.HasSuffix(pattern, ".*"):
		return strings.HasPrefix(name, pattern[:len(pattern)-1])
	default:
		return pattern == name
	}
}

// MatchAny reports whether name matches any of patterns.
func MatchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if Match(p, name) {
			return true
		}
	}
	return false
}

// Overlap reports whether some event type name would match a pattern in a and
// a pattern in b.
func Overlap(a, b []string) bool {
	for _, p := range a {
		for _, q := range b {
			if patternsOverlap(p, q) {
				return true
			}
		}
	}
	return false
}

func patternsOverlap(p, q string) bool {
	if p == Wildcard || q == Wildcard {
		other := q
		if p != Wildcard {
			other = p
		}
		return other == Wildcard || !Reserved(strings.TrimSuffix(other, "*"))
	}
	pw, qw := strings.HasSuffix(p, ".*"), strings.HasSuffix(q, ".*")
	pp, qp := strings.TrimSuffix(p, "*"), strings.TrimSuffix(q, "*")
	switch {
	case pw && qw:
		return strings.HasPrefix(pp, qp) || strings.HasPrefix(qp, pp)
	case pw:
		return strings.HasPrefix(q, pp)
	case qw:
		return strings.HasPrefix(p, qp)
	default:
		return p == q
	}
}

// CheckPatterns validates an endpoint's subscription list and returns it
// without duplicates. field names the list in errors.
func CheckPatterns(field string, patterns []string) ([]string, error) {
	if len(patterns) == 0 {
		return nil, fault.Invalid(field, "subscribe to at least one event type; use [\"*\"] for every event type")
	}
	if len(patterns) > 256 {
		return nil, fault.Invalid(field, "at most 256 event types per endpoint, got %d", len(patterns))
	}
	seen := make(map[string]bool, len(patterns))
	out := make([]string, 0, len(patterns))
	for _, p := range patterns {
		if !ValidPattern(p) {
			return nil, fault.Invalid(field, "%q is not a valid event type or pattern: use a name such as \"order.created\", a prefix pattern such as \"order.*\", or \"*\"", p)
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}
