// Package webhook defines the configuration values of a webhook endpoint that
// the API stores and the dispatch engine obeys: event type names and
// subscription patterns, retry policies, outbound authentication and custom
// headers. It validates them and reports problems as *fault.Error values
// that name the offending field.
package webhook
