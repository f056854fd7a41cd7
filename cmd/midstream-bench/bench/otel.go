package bench

import (
	"context"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/producer"
)

// Telemetry is the OpenTelemetry set-up of a measured run: tracing through
// an SDK TracerProvider whose spans go to a batch span processor with an
// exporter that discards them, metrics through an SDK MeterProvider with a
// manual reader (every instrument records), and the W3C trace context
// propagator; or the API's no-op providers for what is off.
type Telemetry struct {
	tp     trace.TracerProvider
	mp     metric.MeterProvider
	reader *sdkmetric.ManualReader
	stop   func()
}

// Sampling says how an SDK TracerProvider samples.
type Sampling int

// Tracing set-ups.
const (
	NoTracing      Sampling = iota // the no-op TracerProvider
	AlwaysSample                   // every span recorded and exported
	ParentSampled                  // ParentBased(never): spans follow the producer's decision
	SampleNoExport                 // AlwaysSample without a span processor: recorded, never exported
	TenPercent                     // ParentBased(TraceIDRatioBased(0.1)): a tenth of root spans, children follow
)

// NewTelemetry returns a set-up with tracing as given and metrics on or
// off. Shutdown releases it.
func NewTelemetry(tracing Sampling, metrics bool) *Telemetry {
	t := &Telemetry{tp: tracenoop.NewTracerProvider(), mp: metricnoop.NewMeterProvider()}
	var stops []func()
	if tracing != NoTracing {
		sampler := sdktrace.AlwaysSample()
		switch tracing {
		case ParentSampled:
			sampler = sdktrace.ParentBased(sdktrace.NeverSample())
		case TenPercent:
			sampler = sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.1))
		}
		opts := []sdktrace.TracerProviderOption{sdktrace.WithSampler(sampler)}
		if tracing != SampleNoExport {
			opts = append(opts, sdktrace.WithSpanProcessor(sdktrace.NewBatchSpanProcessor(discard{})))
		}
		tp := sdktrace.NewTracerProvider(opts...)
		t.tp = tp
		stops = append(stops, func() { _ = tp.Shutdown(context.Background()) })
	}
	if metrics {
		t.reader = sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(t.reader))
		t.mp = mp
		stops = append(stops, func() { _ = mp.Shutdown(context.Background()) })
	}
	t.stop = func() {
		for _, f := range stops {
			f()
		}
	}
	return t
}

// ConsumerOptions are the consumer options of the set-up.
func (t *Telemetry) ConsumerOptions() []consumer.Option {
	return []consumer.Option{consumer.WithTracerProvider(t.tp), consumer.WithMeterProvider(t.mp), consumer.WithPropagator(propagation.TraceContext{})}
}

// ProducerOptions are the producer options of the set-up.
func (t *Telemetry) ProducerOptions() []producer.Option {
	return []producer.Option{producer.WithTracerProvider(t.tp), producer.WithMeterProvider(t.mp), producer.WithPropagator(propagation.TraceContext{})}
}

// Collect reads the metrics once, as an exporter would (gauge callbacks
// included). It does nothing when off.
func (t *Telemetry) Collect(ctx context.Context) error {
	if t.reader == nil {
		return nil
	}
	var rm metricdata.ResourceMetrics
	return t.reader.Collect(ctx, &rm)
}

// Shutdown releases the providers.
func (t *Telemetry) Shutdown() { t.stop() }

// discard is a span exporter that drops everything.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// FillTraced is Fill with a W3C traceparent field in every entry, as a traced
// producer writes, so that consuming them exercises trace context
// extraction. One entry in every sampledEvery has the parent's sampled flag
// set (1: all; 0: none), as a producer sampling that fraction writes.
func FillTraced(ctx context.Context, rdb redis.UniversalClient, stream string, n int, sampledEvery int) error {
	const off = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
	const on = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	for start := 0; start < n; start += 1000 {
		pipe := rdb.Pipeline()
		for i := start; i < min(start+1000, n); i++ {
			traceparent := off
			if sampledEvery > 0 && i%sampledEvery == 0 {
				traceparent = on
			}
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: append(RawValues(NewEvent(i)), midstream.FieldTraceparent, traceparent)})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}
