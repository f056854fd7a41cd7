package producer_test

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/producer"
)

func TestOtelOptionsValidation(t *testing.T) {
	rdb, _ := newClient(t)
	for _, tc := range []struct {
		name string
		opt  producer.Option
		ok   bool
	}{
		{"nil tracer provider", producer.WithTracerProvider(nil), false},
		{"nil propagator", producer.WithPropagator(nil), false},
		{"nil meter provider", producer.WithMeterProvider(nil), false},
		{"tracer provider", producer.WithTracerProvider(tracenoop.NewTracerProvider()), true},
		{"propagator", producer.WithPropagator(propagation.TraceContext{}), true},
		{"meter provider", producer.WithMeterProvider(noop.NewMeterProvider()), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := producer.New[map[string]string](rdb, "s", tc.opt)
			if tc.ok && err != nil {
				t.Fatalf("New: %v", err)
			}
			if !tc.ok && !errors.Is(err, midstream.ErrInvalidOption) {
				t.Fatalf("New: %v, want ErrInvalidOption", err)
			}
		})
	}
}

// TestTraceContextInEntry checks that Publish and PublishBatch write the
// span's W3C context into the reserved fields, and nothing without a
// propagator.
func TestTraceContextInEntry(t *testing.T) {
	ctx := context.Background()
	rdb, _ := newClient(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	p, err := producer.New[map[string]string](rdb, "s", producer.WithTracerProvider(tp), producer.WithPropagator(propagation.TraceContext{}))
	if err != nil {
		t.Fatal(err)
	}
	id, err := p.Publish(ctx, map[string]string{"a": "1"})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := p.PublishBatch(ctx, []map[string]string{{"a": "2"}, {"a": "3"}})
	if err != nil {
		t.Fatal(err)
	}
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	for i, want := range [][]string{{id}, ids} {
		sc := spans[i].SpanContext()
		if spans[i].Name() != "publish s" {
			t.Errorf("span %d is %q", i, spans[i].Name())
		}
		for _, id := range want {
			msgs, err := rdb.XRange(ctx, "s", id, id).Result()
			if err != nil || len(msgs) != 1 {
				t.Fatalf("XRANGE %s: %v %v", id, msgs, err)
			}
			tp, _ := msgs[0].Values[midstream.FieldTraceparent].(string)
			if wantTP := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"; tp != wantTP {
				t.Errorf("entry %s: traceparent %q, want %q", id, tp, wantTP)
			}
		}
	}

	plain, err := producer.New[map[string]string](rdb, "s", producer.WithTracerProvider(tp)) // global propagator: none set
	if err != nil {
		t.Fatal(err)
	}
	id, err = plain.Publish(ctx, map[string]string{"a": "4"})
	if err != nil {
		t.Fatal(err)
	}
	msgs, _ := rdb.XRange(ctx, "s", id, id).Result()
	if _, ok := msgs[0].Values[midstream.FieldTraceparent]; ok || len(msgs[0].Values) != 1 {
		t.Errorf("without a propagator the entry holds %v", msgs[0].Values)
	}
}

// TestTraceContextInDelayedEntry checks that a delayed entry carries the
// trace context of its publish span through the move.
func TestTraceContextInDelayedEntry(t *testing.T) {
	ctx := context.Background()
	rdb, _ := newClient(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	p, err := producer.New[map[string]string](rdb, "s", producer.WithTracerProvider(tp), producer.WithPropagator(propagation.TraceContext{}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.PublishIn(ctx, map[string]string{"a": "1"}, 0); err != nil {
		t.Fatal(err)
	}
	s, err := producer.NewScheduler(rdb, "s")
	if err != nil {
		t.Fatal(err)
	}
	if moved, _, err := s.MoveDue(ctx); err != nil || moved != 1 {
		t.Fatalf("MoveDue: %d, %v", moved, err)
	}
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	e := rdb.XRange(ctx, "s", "-", "+").Val()
	if len(e) != 1 {
		t.Fatalf("%d entries, want 1", len(e))
	}
	tp0, _ := e[0].Values[midstream.FieldTraceparent].(string)
	if want := spans[0].SpanContext().TraceID().String(); len(tp0) < 36 || tp0[3:35] != want {
		t.Fatalf("traceparent %q, want trace %s", tp0, want)
	}
}
