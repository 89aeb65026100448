// Package e2e tests destination types through Herald's real surface: a
// server started in process, endpoints created and events published over
// GraphQL, and real brokers (Debian's rabbitmq-server and nats-server) or
// in-process implementations of their wire protocol consuming what
// Herald published.
package e2e
