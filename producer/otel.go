package producer

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/midstream-go/midstream/internal/telemetry"
)

// WithTracerProvider sets the TracerProvider of the producer's spans.
// Default: the global provider (otel.GetTracerProvider). A global provider
// the application sets after New is used too (OpenTelemetry's global
// delegation); while none is set, or it is a no-op, publishing does no
// tracing work at all.
//
// Publish creates a span "publish <stream>" of kind producer; PublishBatch
// one span for the whole batch, with messaging.batch.message_count. The
// span covers encoding, the wait for a coalesced pipeline and the round
// trip. Attributes follow OpenTelemetry's messaging semantic conventions:
// messaging.system "redis", messaging.destination.name (the stream),
// messaging.operation.type "send", messaging.operation.name "publish", and
// messaging.message.id once the entry is added. Its context is written into
// the entry's reserved fields traceparent and tracestate (and baggage) by the
// propagator (see WithPropagator); every entry of a batch carries the batch
// span's context, so each consumer span is a child of it.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(cfg *config) {
		if tp == nil {
			cfg.fail("nil tracer provider")
			return
		}
		cfg.otel.TracerProvider = tp
	}
}

// WithPropagator sets the propagator that writes the span's context into
// each entry. Default: the global one (otel.GetTextMapPropagator), looked
// up at each call, which injects nothing until the application sets one,
// for example propagation.TraceContext{} (with propagation.Baggage{} in a
// composite to carry baggage). Only the reserved fields traceparent,
// tracestate and baggage are written; a propagator using other names (B3,
// Jaeger) carries nothing.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(cfg *config) {
		if p == nil {
			cfg.fail("nil propagator")
			return
		}
		cfg.otel.Propagator = p
	}
}

// WithMeterProvider sets the MeterProvider of the producer's metrics.
// Default: the global one (otel.GetMeterProvider), including one the
// application sets after New. The producer counts entries added as
// midstream.messages.published (attributes messaging.system and
// messaging.destination.name).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(cfg *config) {
		if mp == nil {
			cfg.fail("nil meter provider")
			return
		}
		cfg.otel.MeterProvider = mp
	}
}

// observer traces and counts a Producer's publishing.
type observer struct {
	tracer    telemetry.Tracer
	prop      propagation.TextMapPropagator // nil: the global one
	spanName  string
	attrs     []attribute.KeyValue
	published metric.Int64Counter
	addOpts   []metric.AddOption
}

func newObserver(cfg telemetry.Providers, stream string) *observer {
	o := &observer{
		tracer:   telemetry.NewTracer(cfg.TracerProvider),
		prop:     cfg.Propagator,
		spanName: "publish " + stream,
		attrs: []attribute.KeyValue{
			telemetry.System,
			telemetry.KeyDestination.String(stream),
			telemetry.KeyOperationType.String(telemetry.OpSend),
			telemetry.KeyOperationName.String("publish"),
		},
		addOpts: []metric.AddOption{telemetry.StreamAttrs(stream, "")},
	}
	var err error
	o.published, err = telemetry.Meter(cfg.MeterProvider).Int64Counter(telemetry.MetricPublished,
		metric.WithUnit("{message}"), metric.WithDescription("Entries added to streams by producers."))
	if err != nil {
		otel.Handle(err)
	}
	return o
}

// start starts the span of a Publish (batch 0) or a PublishBatch of batch
// entries, if tracing
// is on; span is nil otherwise.
func (o *observer) start(ctx context.Context, batch int) (_ context.Context, span trace.Span) {
	if !o.tracer.On() {
		return ctx, nil
	}
	attrs := o.attrs
	if batch > 0 {
		attrs = append(attrs[:len(attrs):len(attrs)], telemetry.KeyBatchCount.Int(batch))
	}
	return o.tracer.Start(ctx, o.spanName, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
}

// inject appends the trace context of ctx to fields (name, value pairs)
// when span is a valid one; otherwise it returns fields untouched.
func (o *observer) inject(ctx context.Context, span trace.Span, fields []string) []string {
	if span == nil || !span.SpanContext().IsValid() {
		return fields
	}
	c := telemetry.FieldCarrier{Pairs: fields}
	telemetry.Propagator(o.prop).Inject(ctx, &c)
	return c.Pairs
}

// endOne ends the span of a Publish and counts the entry if it was added.
func (o *observer) endOne(span trace.Span, id string, err error) {
	added := 0
	if err == nil {
		added = 1
	}
	o.end(span, added, id, err)
}

// endBatch ends the span of a PublishBatch and counts the entries added.
func (o *observer) endBatch(span trace.Span, ids []string, err error) {
	added := 0
	for _, id := range ids {
		if id != "" {
			added++
		}
	}
	o.end(span, added, "", err)
}

// end counts added entries and ends span (if not nil); id is the ID of a
// single entry.
func (o *observer) end(span trace.Span, added int, id string, err error) {
	if added > 0 && o.published != nil {
		o.published.Add(context.Background(), int64(added), o.addOpts...)
	}
	if span == nil {
		return
	}
	if id != "" {
		span.SetAttributes(telemetry.KeyMessageID.String(id))
	}
	if err != nil {
		telemetry.SetError(span, err)
	}
	span.End()
}
