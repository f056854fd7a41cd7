package producer

import (
	"context"
	"github.com/midstream-go/midstream/internal/telemetry"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkObservePublish measures what observability adds to one Publish,
// off and with the SDK on.
func BenchmarkObservePublish(b *testing.B) {
	for _, tc := range []struct {
		name string
		cfg  telemetry.Providers
	}{
		{"off", telemetry.Providers{}},
		{"metrics", telemetry.Providers{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))}},
		{"traces", telemetry.Providers{Propagator: propagation.TraceContext{}, TracerProvider: sdktrace.NewTracerProvider(
			sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(tracetest.NewNoopExporter()))}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			o := newObserver(tc.cfg, "s")
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				sctx, span := o.start(ctx, 0)
				_ = o.inject(sctx, span, nil)
				o.endOne(span, "1-1", nil)
			}
		})
	}
}
