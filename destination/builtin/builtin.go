// Package builtin lists the destination types built into Herald, in the
// order the API and the forms show them. A new destination type is a
// package of its own added here.
package builtin

import (
	"github.com/heraldhq/herald/destination"
	"github.com/heraldhq/herald/destination/httpdest"
	"github.com/heraldhq/herald/destination/kafka"
	"github.com/heraldhq/herald/destination/listener"
	"github.com/heraldhq/herald/destination/nats"
	"github.com/heraldhq/herald/destination/pubsub"
	"github.com/heraldhq/herald/destination/rabbitmq"
	"github.com/heraldhq/herald/destination/sns"
	"github.com/heraldhq/herald/destination/sqs"
)

// Registry returns a registry of every built-in destination type, for
// what declares or checks them (the API's types, the forms, the costs).
// Its listeners have no sessions: a server uses RegistryWith.
func Registry() *destination.Registry { return RegistryWith(nil) }

// RegistryWith returns a registry of every built-in destination type whose
// listeners are delivered through hub's sessions.
func RegistryWith(hub *listener.Hub) *destination.Registry {
	return destination.NewRegistry(
		httpdest.Spec(),
		rabbitmq.Spec(),
		kafka.Spec(),
		nats.Spec(),
		sqs.Spec(),
		sns.Spec(),
		pubsub.Spec(),
		listener.Spec(hub),
	)
}
