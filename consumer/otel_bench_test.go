package consumer

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/midstream-go/midstream"
)

// BenchmarkObserveMessage measures what observability adds to handling one
// message (a traced entry), off and with the SDK on.
func BenchmarkObserveMessage(b *testing.B) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	exp := tracetest.NewNoopExporter()
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"off", nil},
		{"metrics", []Option{WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader())))}},
		{"traces", []Option{WithPropagator(propagation.TraceContext{}), WithTracerProvider(sdktrace.NewTracerProvider(
			sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(exp)))}},
		{"traces-unsampled-parent", []Option{WithPropagator(propagation.TraceContext{}), WithTracerProvider(sdktrace.NewTracerProvider(
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())), sdktrace.WithBatcher(exp)))}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c, err := New(rdb, "s", "g", HandlerFunc(func(context.Context, *Message) error { return nil }), tc.opts...)
			if err != nil {
				b.Fatal(err)
			}
			tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
			if tc.name == "traces-unsampled-parent" {
				tp = tp[:len(tp)-2] + "00"
			}
			m := &Message{Stream: "s", ID: "1700000000000-0", values: midstream.Values{
				"data": "x", midstream.FieldTraceparent: tp}, Deliveries: 1}
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, p := c.obs.begin(ctx, m)
					c.obs.handled(&p, m, nil)
					c.obs.end(&p)
					c.stats.handled.Add(1)
				}
			})
		})
	}
}
