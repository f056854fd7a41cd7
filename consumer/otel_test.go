package consumer_test

import (
	"errors"
	"testing"

	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/consumer"
)

func TestOtelOptionsValidation(t *testing.T) {
	rdb := offlineClient(t)
	for _, tc := range []struct {
		name string
		opt  consumer.Option
		ok   bool
	}{
		{"nil tracer provider", consumer.WithTracerProvider(nil), false},
		{"nil propagator", consumer.WithPropagator(nil), false},
		{"nil meter provider", consumer.WithMeterProvider(nil), false},
		{"tracer provider", consumer.WithTracerProvider(tracenoop.NewTracerProvider()), true},
		{"propagator", consumer.WithPropagator(propagation.TraceContext{}), true},
		{"meter provider", consumer.WithMeterProvider(noop.NewMeterProvider()), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := consumer.New(rdb, "s", "g", nopHandler(), tc.opt)
			if tc.ok && err != nil {
				t.Fatalf("New: %v", err)
			}
			if !tc.ok && !errors.Is(err, midstream.ErrInvalidOption) {
				t.Fatalf("New: %v, want ErrInvalidOption", err)
			}
		})
	}
}
