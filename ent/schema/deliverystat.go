package schema

import (
	"fmt"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// statsLatencyBins is stats.LatencyBins (ent/schema must not import the
// packages that import ent).
const statsLatencyBins = 32

// DeliveryStat is one roll-up bucket of delivery statistics: the attempts
// and finished deliveries of one endpoint (or, with an empty endpoint_id,
// of the whole app) in one minute or one hour, with a log-scale histogram
// of attempt durations. The dispatch engine's recorder adds to it in the
// transaction that records the attempts; package stats reads it;
// retention prunes it. It is not part of the GraphQL schema (Endpoint.stats
// and App.stats present it) and has no foreign keys, so that deleting an
// endpoint never waits on its statistics.
type DeliveryStat struct {
	ent.Schema
}

// Fields of DeliveryStat.
func (DeliveryStat) Fields() []ent.Field {
	fields := []ent.Field{
		field.String("app_id").Immutable().NotEmpty(),
		field.String("endpoint_id").Immutable().Default("").
			Comment("Empty for the app's total over all its endpoints."),
		field.Int("resolution").Immutable().
			Comment("Bucket length in seconds: 60 or 3600."),
		field.Int64("bucket").Immutable().
			Comment("Start of the bucket in Unix seconds, a multiple of the resolution."),
		field.Int64("attempts_succeeded").Default(0),
		field.Int64("attempts_retryable").Default(0),
		field.Int64("attempts_permanent").Default(0),
		field.Int64("deliveries_succeeded").Default(0),
		field.Int64("deliveries_failed").Default(0),
		field.Int64("duration_ms").Default(0).
			Comment("Sum of the attempts' durations in milliseconds."),
	}
	for i := range statsLatencyBins {
		fields = append(fields, field.Int64(fmt.Sprintf("latency_%02d", i)).Default(0).
			Comment("Attempts whose duration falls in histogram bin i (see stats.LatencyBin)."))
	}
	return fields
}

// Indexes of DeliveryStat: one row per bucket, found by what queries and
// upserts name.
func (DeliveryStat) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("app_id", "endpoint_id", "resolution", "bucket").Unique(),
		index.Fields("resolution", "bucket"), // retention
	}
}

// Annotations of DeliveryStat.
func (DeliveryStat) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
