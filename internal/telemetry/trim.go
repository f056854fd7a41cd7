package telemetry

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Trimmed counts entries a trimmer removed from streams, as the counter
// MetricTrimmed with the attributes messaging.system and
// messaging.destination.name (the stream). It is meant for the trim package:
//
//	tm := telemetry.NewTrimmed(cfg.meterProvider) // nil: the global provider
//	...
//	tm.Add(ctx, stream, removed) // after each XTRIM, with its reply
type Trimmed struct {
	counter metric.Int64Counter
}

// NewTrimmed returns a Trimmed on mp, or on the global MeterProvider when mp
// is nil (see Meter). Instrument errors go to otel.Handle, and the counter
// then records nothing; it never fails.
func NewTrimmed(mp metric.MeterProvider) *Trimmed {
	c, err := Meter(mp).Int64Counter(MetricTrimmed,
		metric.WithUnit("{message}"),
		metric.WithDescription("Entries removed from streams by trimming."))
	if err != nil {
		otel.Handle(err)
	}
	return &Trimmed{counter: c}
}

// Add counts n entries trimmed from stream. n <= 0 records nothing.
func (t *Trimmed) Add(ctx context.Context, stream string, n int64) {
	if t == nil || t.counter == nil || n <= 0 {
		return
	}
	t.counter.Add(ctx, n, metric.WithAttributes(System, KeyDestination.String(stream)))
}

// StreamAttrs returns the metric attributes of a stream (and of a group when
// group is not empty), as one reusable option.
func StreamAttrs(stream, group string) metric.MeasurementOption {
	kvs := []attribute.KeyValue{System, KeyDestination.String(stream)}
	if group != "" {
		kvs = append(kvs, KeyGroup.String(group))
	}
	return metric.WithAttributeSet(attribute.NewSet(kvs...))
}
