// Package tracing sets up OpenTelemetry tracing from the standard OTEL_*
// environment variables and W3C trace context propagation. With no OTLP
// endpoint configured it exports nothing, but still gives every request a
// trace id (its caller's, or a new one) for the logs, and trace context
// still flows through.
package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/msctl/msctl/services/kit/config"
)

// Shutdown flushes and stops the exporter.
type Shutdown func(context.Context) error

// Enabled reports whether the environment asks for exported traces: an
// OTLP endpoint is set and neither OTEL_SDK_DISABLED nor
// OTEL_TRACES_EXPORTER=none turns it off.
func Enabled(lookup func(string) (string, bool)) bool {
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	if strings.EqualFold(get("OTEL_SDK_DISABLED"), "true") || get("OTEL_TRACES_EXPORTER") == "none" {
		return false
	}
	return get("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup installs the global propagator and, when Enabled, a tracer
// provider exporting over OTLP. The exporters read the endpoint, headers,
// TLS and timeout from OTEL_EXPORTER_OTLP_*; the protocol is
// OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL, grpc or http/protobuf (the
// specification's default). Sampling follows OTEL_TRACES_SAMPLER.
//
// Errors the SDK meets later, such as a failed export, are logged through
// logger at warn, and the SDK's and exporters' own log (bad OTEL_*
// settings, say) through logger too: OpenTelemetry's defaults print plain
// text to stderr, which breaks a stream of JSON logs. Like the propagator
// and the tracer provider, both are process-wide: with several services
// in one process (tests), the last Setup's logger gets them all. An
// unknown protocol is a *config.Error naming the variable.
func Setup(ctx context.Context, lookup func(string) (string, bool), service, version string, logger *slog.Logger) (Shutdown, bool, error) {
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("opentelemetry", "error", err)
	}))
	otel.SetLogger(logr.FromSlogHandler(otelLevels{logger.With("component", "opentelemetry").Handler()}))
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if !Enabled(lookup) {
		// Spans that are never recorded (unless the caller's trace is
		// sampled) and never exported: ids for the logs at little cost.
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
		otel.SetTracerProvider(tp)
		return tp.Shutdown, false, nil
	}
	protocol, protocolVar := "http/protobuf", ""
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if v, ok := lookup(k); ok && strings.TrimSpace(v) != "" {
			protocol, protocolVar = strings.TrimSpace(v), k
			break
		}
	}
	var (
		exp *otlptrace.Exporter
		err error
	)
	switch protocol {
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	case "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	default:
		return nil, false, config.Invalid(protocolVar, fmt.Errorf("%q is not grpc or http/protobuf", protocol))
	}
	if err != nil {
		return nil, false, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service), attribute.String("service.version", version)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win.
	)
	if err != nil {
		return nil, false, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, true, nil
}

// otelLevels lifts OpenTelemetry's warnings (logr V(1), which slog sees as
// level -1) to slog's Warn, so they show at the default level; its info
// and debug lines (V(4), V(8)) stay below Info.
type otelLevels struct{ slog.Handler }

func lift(l slog.Level) slog.Level {
	if l == -1 {
		return slog.LevelWarn
	}
	return l
}

func (h otelLevels) Enabled(ctx context.Context, l slog.Level) bool {
	return h.Handler.Enabled(ctx, lift(l))
}

func (h otelLevels) Handle(ctx context.Context, r slog.Record) error {
	r.Level = lift(r.Level)
	return h.Handler.Handle(ctx, r)
}

func (h otelLevels) WithAttrs(as []slog.Attr) slog.Handler {
	return otelLevels{h.Handler.WithAttrs(as)}
}

func (h otelLevels) WithGroup(name string) slog.Handler { return otelLevels{h.Handler.WithGroup(name)} }
