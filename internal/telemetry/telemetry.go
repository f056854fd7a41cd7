// Package telemetry holds what midstream's packages share for OpenTelemetry:
// the instrumentation scope, attribute keys and instrument names, a carrier
// over entry fields, and a Tracer that costs nothing while tracing is off.
//
// Only the OpenTelemetry API is used here (trace, metric, propagation); the
// SDK belongs to applications, tests, examples and the bench program.
package telemetry

import (
	"context"
	"reflect"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/midstream-go/midstream"
)

// ScopeName is the instrumentation scope of every tracer and meter midstream
// creates.
const ScopeName = "github.com/midstream-go/midstream"

// Attribute keys. The messaging.* keys are OpenTelemetry's messaging semantic
// conventions (semconv v1.40); the others are midstream's own.
const (
	KeySystem         = attribute.Key("messaging.system")
	KeyDestination    = attribute.Key("messaging.destination.name")
	KeyGroup          = attribute.Key("messaging.consumer.group.name")
	KeyMessageID      = attribute.Key("messaging.message.id")
	KeyOperationType  = attribute.Key("messaging.operation.type")
	KeyOperationName  = attribute.Key("messaging.operation.name")
	KeyBatchCount     = attribute.Key("messaging.batch.message_count")
	KeyClientID       = attribute.Key("messaging.client.id")
	KeyDeliveryCount  = attribute.Key("messaging.redis.delivery_count") // the server's delivery count (XPENDING)
	KeyDeadLetterKey  = attribute.Key("midstream.dead_letter.key")      // the dead-letter stream
	KeyDeadLetterDone = attribute.Key("midstream.dead_letter.moved")    // whether a move wrote anything
	KeyReclaimClaimed = attribute.Key("midstream.reclaim.claimed")      // entries a reclaim pass claimed
	KeyReclaimExpired = attribute.Key("midstream.reclaim.expired")      // entries past the delivery limit it found
	KeyRedriveTarget  = attribute.Key("midstream.redrive.target")       // where Redrive sends entries
)

// System is messaging.system for every span and metric point.
var System = KeySystem.String("redis")

// Operation types (messaging.operation.type).
const (
	OpSend    = "send"
	OpProcess = "process"
	OpReceive = "receive"
	OpSettle  = "settle"
)

// Instrument names.
const (
	MetricPublished      = "midstream.messages.published"
	MetricProcessed      = "midstream.messages.processed"
	MetricFailed         = "midstream.messages.failed"
	MetricRetried        = "midstream.messages.retried"
	MetricReclaimed      = "midstream.messages.reclaimed"
	MetricDeadLettered   = "midstream.messages.dead_lettered"
	MetricDeleted        = "midstream.messages.deleted_while_pending"
	MetricTrimmed        = "midstream.trim.trimmed"
	MetricHandlerTime    = "midstream.handler.duration"
	MetricE2ELatency     = "midstream.e2e.latency"
	MetricInFlight       = "midstream.messages.in_flight"
	MetricStreamLength   = "midstream.stream.length"
	MetricGroupLag       = "midstream.group.lag"
	MetricGroupPending   = "midstream.group.pending"
	MetricOldestAge      = "midstream.group.pending.oldest_age"
	MetricGroupConsumers = "midstream.group.consumers"
	MetricDeadLetter     = "midstream.deadletter.depth"
	MetricDelaySize      = "midstream.delay.size"
	MetricDelayOverdue   = "midstream.delay.overdue_age"
)

// SecondsBuckets are the bucket boundaries advised for midstream's duration
// histograms, in seconds: from 100µs (a fast handler, a local round trip) to
// a minute (retries after backoff). A View can override them.
var SecondsBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Meter returns the meter of mp, or of the global MeterProvider when mp is
// nil. A meter of the global provider taken before the application sets one
// forwards to the provider set later (OpenTelemetry's global delegation),
// instruments and callbacks included, and measures nothing until then.
func Meter(mp metric.MeterProvider) metric.Meter {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	return mp.Meter(ScopeName)
}

// Propagator returns p, or the global TextMapPropagator when p is nil,
// resolved at each call so that a propagator set later is used.
func Propagator(p propagation.TextMapPropagator) propagation.TextMapPropagator {
	if p == nil {
		return otel.GetTextMapPropagator()
	}
	return p
}

// Tracer is a tracer that tells, cheaply, whether starting a span can do
// anything, so that callers skip the span, its options and propagation
// entirely (no allocation) while tracing is off. Its zero value is off.
type Tracer struct {
	tracer trace.Tracer // nil: never traces
	global bool         // from the global provider: off while that is unset or a no-op
}

// NewTracer returns a Tracer of tp, or of the global TracerProvider when tp
// is nil. A tracer of the global provider taken before the application sets
// one forwards to the provider set later; until then (and while the global
// provider is a no-op) On reports false. A no-op tp is off for good.
func NewTracer(tp trace.TracerProvider) Tracer {
	global := tp == nil
	if global {
		tp = otel.GetTracerProvider()
	} else if _, ok := tp.(noop.TracerProvider); ok {
		return Tracer{}
	}
	return Tracer{tracer: tp.Tracer(ScopeName), global: global}
}

// On reports whether spans started now may be recorded or propagated.
func (t *Tracer) On() bool {
	if t.tracer == nil {
		return false
	}
	return !t.global || !globalOff()
}

// Start starts a span. Call it only when On reports true.
func (t *Tracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	return t.tracer.Start(ctx, name, opts...)
}

// placeholderTP is the type of the global TracerProvider before the
// application sets one: OpenTelemetry's delegating placeholder, whose spans
// record nothing. It is nil if a provider was set before this package was
// initialized, or if the API's internals change: tracing then stays on
// (correct, only not free).
var placeholderTP = func() reflect.Type {
	t := reflect.TypeOf(otel.GetTracerProvider())
	if t != nil && t.Kind() == reflect.Pointer && t.Elem().PkgPath() == "go.opentelemetry.io/otel/internal/global" {
		return t
	}
	return nil
}()

// globalOff reports whether the global TracerProvider is still the
// placeholder, or a no-op.
func globalOff() bool {
	tp := otel.GetTracerProvider()
	if _, ok := tp.(noop.TracerProvider); ok {
		return true
	}
	return placeholderTP != nil && reflect.TypeOf(tp) == placeholderTP
}

// SetError marks span failed with err.
func SetError(span trace.Span, err error) {
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}

// FieldCarrier is a propagation.TextMapCarrier over an entry's field, value
// pairs, for injecting trace context into an entry being written. It keeps
// only the reserved trace context fields (midstream.FieldTraceparent,
// FieldTracestate and FieldBaggage): what a propagator writes under other
// names is dropped, so a propagator that uses other fields (B3, Jaeger)
// carries nothing through Redis.
type FieldCarrier struct {
	Pairs []string
}

// Get returns the value of key, or "".
func (c *FieldCarrier) Get(key string) string {
	for i := 0; i+1 < len(c.Pairs); i += 2 {
		if c.Pairs[i] == key {
			return c.Pairs[i+1]
		}
	}
	return ""
}

// Set sets key, if it is a trace context field, replacing an earlier value.
func (c *FieldCarrier) Set(key, value string) {
	switch key {
	case midstream.FieldTraceparent, midstream.FieldTracestate, midstream.FieldBaggage:
	default:
		return
	}
	for i := 0; i+1 < len(c.Pairs); i += 2 {
		if c.Pairs[i] == key {
			c.Pairs[i+1] = value
			return
		}
	}
	c.Pairs = append(c.Pairs, key, value)
}

// Keys returns the names present.
func (c *FieldCarrier) Keys() []string {
	keys := make([]string, 0, len(c.Pairs)/2)
	for i := 0; i+1 < len(c.Pairs); i += 2 {
		keys = append(keys, c.Pairs[i])
	}
	return keys
}

// Extract returns ctx with the trace context of an entry's fields, read with
// prop. Entries without a traceparent field are not looked at further
// (nothing is allocated for them).
func Extract(ctx context.Context, prop propagation.TextMapPropagator, fields propagation.TextMapCarrier) context.Context {
	if fields.Get(midstream.FieldTraceparent) == "" {
		return ctx
	}
	return Propagator(prop).Extract(ctx, fields)
}

// Providers holds a package's OpenTelemetry options; a nil field means the
// global one.
type Providers struct {
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
	MeterProvider  metric.MeterProvider
}
