package schema

import (
	"encoding/json"
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/ids"
	"github.com/heraldhq/herald/webhook"
)

// Endpoint is a webhook: a URL that receives the app's events of the types it
// subscribes to, signed with its secret and sent with its auth, headers,
// timeout and retry policy.
type Endpoint struct {
	ent.Schema
}

// Mixin of Endpoint.
func (Endpoint) Mixin() []ent.Mixin {
	return []ent.Mixin{idMixin{prefix: ids.Endpoint}, timeMixin{}, tenantMixin{}, softDeleteMixin{}}
}

// Fields of Endpoint.
func (Endpoint) Fields() []ent.Field {
	skipInputs := entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)
	return []ent.Field{
		appIDField(),
		field.String("name").
			NotEmpty().
			MaxRuneLen(255).
			Annotations(entgql.OrderField("NAME")),
		field.Text("description").
			Default(""),
		field.String("url").
			NotEmpty().
			MaxLen(2048).
			Annotations(entgql.MapsTo("url")).
			Comment("Where events go: the HTTP URL, or a broker's address and queue or topic, without credentials."),
		field.String("type").
			GoType(destination.Type("")).
			Default(string(destination.HTTP)).
			Annotations(entgql.Skip()).
			Comment("The destination type: HTTP, or a broker such as RABBITMQ."),
		field.JSON("destination", json.RawMessage{}).
			Optional().
			Sensitive().
			Annotations(entgql.Skip()).
			Comment("A broker endpoint's configuration, as its destination.Spec checked it (secrets included)."),
		field.Strings("event_types").
			Comment("Subscribed event types: names, prefix patterns (order.*) or *.").
			Annotations(skipInputs),
		field.JSON("auth", webhook.Auth{}).
			Sensitive().
			Annotations(entgql.Skip()),
		field.JSON("headers", []webhook.Header{}).
			Optional().
			Annotations(entgql.Skip()),
		field.JSON("retry_policy", webhook.RetryPolicy{}).
			Annotations(entgql.Type("RetryPolicy"), skipInputs),
		field.Int64("timeout").
			GoType(time.Duration(0)).
			Default(int64(webhook.DefaultTimeout)).
			Annotations(entgql.Type("Duration"), entgql.Skip(entgql.SkipWhereInput)),
		field.Enum("ordering").
			Values(webhook.Ordering("").Values()...).
			Default(string(webhook.OrderNone)).
			Annotations(entgql.Type("Ordering"), skipInputs).
			Comment("In which order the endpoint receives events: NONE, KEY (per ordering key) or STRICT."),
		field.JSON("rate_limit", &webhook.RateLimit{}).
			Optional().
			Annotations(entgql.Type("RateLimit"), skipInputs).
			Comment("At most this many requests to the endpoint per window; null: no limit."),
		field.JSON("filter", json.RawMessage{}).
			Optional().
			Annotations(entgql.Type("JSON"), skipInputs).
			Comment("Events must match this payload filter (besides their type) to be delivered; null: every event."),
		field.Time("paused_until").
			Optional().
			Nillable().
			Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput, entgql.SkipWhereInput)).
			Comment("The endpoint asked to be left alone until then (Retry-After on 429 or 503)."),
		field.String("flow_owner").
			Optional().
			Nillable().
			Annotations(entgql.Skip()).
			Comment("The engine that sends to a rate-limited or ordered endpoint, alone (replicas)."),
		field.Time("flow_owner_until").
			Optional().
			Nillable().
			Annotations(entgql.Skip()),
		field.Text("transformation").
			Optional().
			Nillable().
			Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput, entgql.SkipWhereInput)).
			Comment("JavaScript that reshapes each event before it is sent (function handler(webhook) { ... }); null: none."),
		field.Bool("is_active").
			Default(true),
		field.String("disabled_reason").
			Optional().
			Nillable(),
		field.Time("disabled_at").
			Optional().
			Nillable(),
		field.String("secret").
			Sensitive().
			Annotations(entgql.Skip()).
			Comment("The signing secret (whsec_…) or Ed25519 private key (whsk_…), sealed (package secret)."),
		field.String("previous_secret").
			Optional().
			Nillable().
			Sensitive().
			Annotations(entgql.Skip()).
			Comment("The signing secret or private key a rotation still signs with, sealed."),
		field.Time("previous_secret_expires_at").
			Optional().
			Nillable().
			Comment("Until then deliveries are signed with the previous secret too."),
		field.Int64("listener_ttl").
			GoType(time.Duration(0)).
			Optional().
			Nillable().
			Annotations(entgql.Skip()).
			Comment("A listener's time to live after its last connection (type LISTENER); null for other endpoints."),
		field.String("listener_session").
			Optional().
			Nillable().
			Annotations(entgql.Skip()).
			Comment("The herald listen session that holds the listener (null: none); it renews listener_seen_at while it does."),
		field.Time("listener_seen_at").
			Optional().
			Nillable().
			Annotations(entgql.Skip()).
			Comment("When the listener's session was last known alive, or ended."),
		field.Time("listener_expires_at").
			Optional().
			Nillable().
			Annotations(entgql.Skip()).
			Comment("When the listener is removed unless a session holds it again: its last sign of life plus its TTL."),
		field.Enum("signature_scheme").
			Values("HMAC_SHA256", "ED25519").
			Default("HMAC_SHA256").
			Annotations(entgql.Type("SignatureScheme"), skipInputs).
			Comment("How deliveries are signed: HMAC_SHA256 (Standard Webhooks v1, a shared secret) or ED25519 (v1a: Herald keeps the private key, receivers verify with publicKey)."),
		field.String("public_key").
			Optional().
			Nillable().
			Annotations(entgql.Skip(entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput, entgql.SkipWhereInput)).
			Comment("The Ed25519 public key (whpk_…) that verifies the endpoint's signatures; null for HMAC_SHA256 endpoints."),
		field.JSON("tls", &webhook.TLS{}).
			Optional().
			Sensitive().
			Annotations(entgql.Skip()).
			Comment("Mutual TLS: the client certificate Herald presents (its key sealed) and the roots it trusts."),
		field.Time("certificate_expires_at").
			Optional().
			Nillable().
			Annotations(entgql.Skip()).
			Comment("When the mTLS client certificate expires (null: none), for the warning before it does."),
		field.Time("certificate_warned_at").
			Optional().
			Nillable().
			Annotations(entgql.Skip()).
			Comment("When Herald last published webhook.certificate_expiring about the endpoint."),
		field.String("secrets_key").
			Default("").
			Annotations(entgql.Skip()).
			Comment("The id of the encryption key the row's secrets are sealed under; \"\": stored in the clear by an older Herald, sealed at the next start."),
		field.Int("consecutive_failures").
			Default(0).
			Comment("Deliveries that ended FAILED since the last successful attempt."),
		field.Int("failure_count").
			Default(0).
			Comment("Failed attempts, all time."),
		field.Int("success_count").
			Default(0).
			Comment("Successful attempts, all time."),
		field.Time("last_success_at").
			Optional().
			Nillable(),
		field.Time("last_failure_at").
			Optional().
			Nillable(),
	}
}

// Edges of Endpoint.
func (Endpoint) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("app", App.Type).
			Ref("endpoints").
			Field("app_id").
			Unique().
			Required().
			Immutable().
			Annotations(entgql.Skip()),
		edge.To("deliveries", Delivery.Type).
			Annotations(entgql.RelayConnection()),
		edge.To("attempts", Attempt.Type).
			Annotations(entgql.Skip()),
	}
}

// Indexes of Endpoint.
func (Endpoint) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("app_id", "created_at"),
		index.Fields("listener_expires_at"),
		// The hourly look for client certificates about to expire.
		index.Fields("certificate_expires_at"),
	}
}

// Annotations of Endpoint.
func (Endpoint) Annotations() []schema.Annotation {
	return []schema.Annotation{
		entgql.QueryField(),
		entgql.RelayConnection(),
	}
}
