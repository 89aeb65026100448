package secret

import (
	"log/slog"
	"strings"
)

// Redacted replaces a secret in logs.
const Redacted = "[REDACTED]"

// valuePrefixes begin values that are secrets whatever attribute carries
// them: signing secrets, Ed25519 private keys, API keys, and sealed values
// (which are safe, but have no business in logs either).
var valuePrefixes = []string{"whsec_", "whsk_", "hrld_", prefix}

// secretKeys are attribute names, or the ends of names, that carry
// secrets.
var secretKeys = []string{"secret", "password", "passwd", "token", "authorization", "api_key", "apikey",
	"private_key", "client_key", "credentials", "cookie"}

// RedactAttr is a slog.HandlerOptions.ReplaceAttr function that replaces
// the value of every attribute that names a secret (a key such as
// "password", "client_secret" or "token") or whose text holds one (a value
// containing whsec_, whsk_ or hrld_) by Redacted. Herald's loggers use it,
// so that a secret reaching a log line by mistake shows as [REDACTED].
func RedactAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindGroup {
		return a
	}
	if secretKey(a.Key) {
		if a.Value.Kind() == slog.KindString && a.Value.String() == "" {
			return a
		}
		return slog.String(a.Key, Redacted)
	}
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); holdsSecret(s) {
			return slog.String(a.Key, redactText(s))
		}
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok && err != nil && holdsSecret(err.Error()) {
			return slog.String(a.Key, redactText(err.Error()))
		}
	}
	return a
}

func secretKey(key string) bool {
	k := strings.ToLower(key)
	if strings.HasSuffix(k, "_id") || strings.HasSuffix(k, "_count") {
		return false // key_id, token_id: identifiers, not secrets
	}
	for _, s := range secretKeys {
		if k == s || strings.HasSuffix(k, "_"+s) || strings.HasSuffix(k, "."+s) {
			return true
		}
	}
	return false
}

func holdsSecret(s string) bool {
	for _, p := range valuePrefixes {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// redactText replaces each word of s that begins with a secret's prefix.
func redactText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		j := -1
		for _, p := range valuePrefixes {
			if k := strings.Index(s[i:], p); k >= 0 && (j < 0 || k < j) {
				j = k
			}
		}
		if j < 0 {
			b.WriteString(s[i:])
			break
		}
		b.WriteString(s[i : i+j])
		b.WriteString(Redacted)
		i += j
		for i < len(s) && !strings.ContainsRune(" \t\n\"',;)]}", rune(s[i])) {
			i++
		}
	}
	return b.String()
}
