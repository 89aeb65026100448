// Package destination decides where Herald may send webhooks, protecting the
// network Herald runs in from server-side request forgery (SSRF).
//
// A [Policy] is enforced twice. [Policy.CheckURL] rejects, when an endpoint is
// created or updated, URLs that can never be delivered to: malformed URLs,
// plain http, IP literals in blocked ranges and names that always mean this
// machine. [Policy.Control], installed in the [net.Dialer] that makes the
// deliveries (see [Policy.Dialer]), then checks every address actually
// dialed, after DNS resolution and for every redirect, so that a name that
// resolves, or later rebinds, to a private address is refused too.
package destination
