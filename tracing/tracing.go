// Package tracing sets up OpenTelemetry tracing from the standard OTEL_*
// environment variables, and traces GraphQL operations.
//
// Tracing is off unless an OTLP endpoint is configured
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) and
// OTEL_SDK_DISABLED is not true. Spans are exported over OTLP/HTTP
// (protobuf) in batches; the SDK itself reads the rest of the standard
// variables: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (the service
// name defaults to "herald"), OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG (default parentbased_always_on),
// OTEL_EXPORTER_OTLP_HEADERS, timeouts and TLS settings, and OTEL_BSP_*.
//
// Nothing here touches OpenTelemetry's global tracer provider or
// propagator: the provider is handed to what needs it.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Provider is a configured tracer provider. Shut it down to flush the
// spans that wait for export.
type Provider = sdktrace.TracerProvider

// FromEnv returns the tracer provider the environment configures, or nil
// if tracing is off. version is reported as service.version.
func FromEnv(ctx context.Context, version string) (*Provider, error) {
	return fromEnv(ctx, os.Getenv, version)
}

func fromEnv(ctx context.Context, getenv func(string) string, version string) (*Provider, error) {
	if v := getenv("OTEL_SDK_DISABLED"); v != "" {
		disabled, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("tracing: OTEL_SDK_DISABLED=%q: want true or false", v)
		}
		if disabled {
			return nil, nil
		}
	}
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "", "otlp":
	case "none":
		return nil, nil
	default:
		return nil, fmt.Errorf("tracing: OTEL_TRACES_EXPORTER=%q: Herald exports traces with otlp (or none)", exp)
	}
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, nil
	}
	proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if proto != "" && proto != "http/protobuf" {
		return nil, fmt.Errorf("tracing: OTLP protocol %q is not supported: Herald exports over http/protobuf", proto)
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(
			attribute.String("service.name", "herald"),
			attribute.String("service.version", version),
		),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
		resource.WithHost(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}
