// Package destination is where Herald sends events: the seam between the
// delivery engine and the kinds of endpoint it delivers to, and the policy
// that decides which addresses it may reach.
//
// The engine knows destinations the way database/sql knows drivers. A
// [Spec] declares a destination type once (its configuration fields,
// their checks and which are secrets, and how to open its [Driver]); a
// [Registry] holds the types an installation offers; the engine opens one
// driver per type it uses ([Registry.Open]) and asks it to [Driver.Prepare]
// a [Target] per endpoint, once per change of the endpoint. It then hands
// the target each attempt as a [Message] (the signed JSON envelope and its
// headers) and gets back a [Result] whose [Outcome] it classifies: delivered,
// retryable, throttled, permanent, interrupted or deferred. HTTP is one
// driver (package httpdest); each broker is another, in a package of its
// own. Package destinationtest is the conformance suite every driver
// passes. Connections to brokers are shared per broker and credentials,
// and closed when idle ([Pool]).
//
// A [Policy] protects the network Herald runs in from server-side request
// forgery (SSRF). It is enforced twice. [Policy.CheckURL] and
// [Policy.CheckHost] reject, when an endpoint is created or updated,
// addresses that can never be delivered to: malformed URLs, plain http, IP
// literals in blocked ranges and names that always mean this machine.
// [Policy.Control], installed in the [net.Dialer] every driver connects
// with (see [Policy.Dialer]), then checks every address actually dialed,
// after DNS resolution and for every redirect, so that a name that
// resolves, or later rebinds, to a private address is refused too.
package destination
