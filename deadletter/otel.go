package deadletter

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/midstream-go/midstream/internal/telemetry"
)

// WithTracerProvider sets the TracerProvider of the spans of Move
// ("dead_letter <source>", kind client, messaging.operation.type "settle")
// and Redrive ("redrive <dead-letter key>", kind client, with the number of
// entries redriven). Default: the global provider (otel.GetTracerProvider);
// one the application sets after New is used too, and nothing is traced, at
// no cost, while none is set. Spans follow OpenTelemetry's messaging
// semantic conventions; a Move made while handling a message (as the
// consumer package does) is a child of that message's span.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) {
		if tp == nil {
			c.fail("nil tracer provider")
			return
		}
		c.tracerProvider = tp
	}
}

// startMove starts the span of a Move, if tracing is on.
func (q *Queue) startMove(ctx context.Context, r *MoveRequest) (context.Context, trace.Span) {
	if !q.tracer.On() {
		return ctx, nil
	}
	attrs := []attribute.KeyValue{
		telemetry.System,
		telemetry.KeyDestination.String(q.source),
		telemetry.KeyGroup.String(r.Group),
		telemetry.KeyClientID.String(r.Consumer),
		telemetry.KeyMessageID.String(r.ID),
		telemetry.KeyOperationType.String(telemetry.OpSettle),
		telemetry.KeyOperationName.String("dead_letter"),
		telemetry.KeyDeadLetterKey.String(q.key),
	}
	if r.Deliveries > 0 {
		attrs = append(attrs, telemetry.KeyDeliveryCount.Int64(r.Deliveries))
	}
	return q.tracer.Start(ctx, "dead_letter "+q.source, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// endMove ends the span of a Move.
func (q *Queue) endMove(span trace.Span, moved bool, err error) {
	if span == nil {
		return
	}
	span.SetAttributes(telemetry.KeyDeadLetterDone.Bool(moved))
	if err != nil {
		telemetry.SetError(span, err)
	}
	span.End()
}

// startRedrive starts the span of a Redrive, if tracing is on.
func (q *Queue) startRedrive(ctx context.Context, opts *RedriveOptions) (context.Context, trace.Span) {
	if !q.tracer.On() {
		return ctx, nil
	}
	target := opts.Target
	if target == "" {
		target = q.source
	}
	return q.tracer.Start(ctx, "redrive "+q.key, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		telemetry.System,
		telemetry.KeyDestination.String(target),
		telemetry.KeyOperationType.String(telemetry.OpSend),
		telemetry.KeyOperationName.String("redrive"),
		telemetry.KeyDeadLetterKey.String(q.key),
	))
}

// endRedrive ends the span of a Redrive.
func (q *Queue) endRedrive(span trace.Span, res RedriveResult, err error) {
	if span == nil {
		return
	}
	span.SetAttributes(telemetry.KeyBatchCount.Int(res.Redriven))
	if err != nil {
		telemetry.SetError(span, err)
	}
	span.End()
}
