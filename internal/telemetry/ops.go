package telemetry

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// MetricCopied counts activities copied into timelines by fan-out on write.
const MetricCopied = "midstream.feed.copied"

// Ops traces and counts the calls of a package built over streams (feed,
// notify): one span per call, named "<operation> <destination>", and
// counters of the entries the calls added. Its zero value does nothing.
type Ops struct {
	tracer    Tracer
	published metric.Int64Counter
	copied    metric.Int64Counter
}

// NewOps returns the Ops of tp and mp (nil: the global providers).
func NewOps(tp trace.TracerProvider, mp metric.MeterProvider) *Ops {
	o := &Ops{tracer: NewTracer(tp)}
	m := Meter(mp)
	var err error
	if o.published, err = m.Int64Counter(MetricPublished, metric.WithUnit("{message}"),
		metric.WithDescription("Entries added to streams.")); err != nil {
		otel.Handle(err)
	}
	if o.copied, err = m.Int64Counter(MetricCopied, metric.WithUnit("{message}"),
		metric.WithDescription("Activities copied into followers' timelines.")); err != nil {
		otel.Handle(err)
	}
	return o
}

// Start starts the span of one call of operation op on dest when tracing is
// on; span is nil otherwise. Writes (send true) are producer spans.
func (o *Ops) Start(ctx context.Context, op, dest string, send bool) (context.Context, trace.Span) {
	if o == nil || !o.tracer.On() {
		return ctx, nil
	}
	kind, opType := trace.SpanKindClient, OpReceive
	if send {
		kind, opType = trace.SpanKindProducer, OpSend
	}
	return o.tracer.Start(ctx, op+" "+dest, trace.WithSpanKind(kind), trace.WithAttributes(
		System, KeyDestination.String(dest), KeyOperationType.String(opType), KeyOperationName.String(op)))
}

// End ends span (if not nil), marking it failed with err (if not nil).
func (o *Ops) End(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		SetError(span, err)
	}
	span.End()
}

// Published counts n entries added to dest.
func (o *Ops) Published(ctx context.Context, dest string, n int64) {
	if o != nil && o.published != nil && n > 0 {
		o.published.Add(ctx, n, StreamAttrs(dest, ""))
	}
}

// Copied counts n timeline copies of activities of dest.
func (o *Ops) Copied(ctx context.Context, dest string, n int64) {
	if o != nil && o.copied != nil && n > 0 {
		o.copied.Add(ctx, n, StreamAttrs(dest, ""))
	}
}
