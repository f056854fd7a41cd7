package consumer

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/health"
	"github.com/midstream-go/midstream/internal/telemetry"
)

// WithTracerProvider sets the TracerProvider of the consumer's spans.
// Default: the global provider (otel.GetTracerProvider). A global provider
// the application sets after New is used too (OpenTelemetry's global
// delegation); while none is set, or it is a no-op, the consumer does no
// tracing work at all: no span, no trace context extraction.
//
// Each handled message gets a span "process <stream>" of kind consumer
// whose parent is the producer's span, read from the entry's traceparent
// and tracestate fields (see WithPropagator): a message's publish and
// processing form one trace, across Redis. (The messaging conventions also
// allow a link instead of a parent; a parent keeps one trace tree per
// message, which is what trace views show best. An entry without trace
// context starts a new trace.) The handler's ctx carries the span. Its
// attributes follow OpenTelemetry's messaging semantic conventions:
// messaging.system "redis", messaging.destination.name (the stream),
// messaging.consumer.group.name, messaging.client.id (the consumer's name),
// messaging.message.id, messaging.operation.type and .name "process", and
// messaging.redis.delivery_count, the server's delivery count (midstream's
// own attribute: the conventions define none for Redis). A handler error
// sets the span's status to error.
//
// A reclaim pass that claims or finds expired entries has a span "reclaim
// <stream>" (kind internal, with the numbers claimed and expired); a move
// to the dead-letter stream a span "dead_letter <stream>" (see
// deadletter.WithTracerProvider), child of the message's span or of the
// reclaim pass. The default dead-letter queue uses this provider; one given
// with WithDeadLetter keeps its own.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) {
		if tp == nil {
			c.fail("nil tracer provider")
			return
		}
		c.otel.TracerProvider = tp
	}
}

// WithPropagator sets the propagator that reads the producer's trace
// context from each entry. Default: the global one
// (otel.GetTextMapPropagator), looked up at each message, which reads
// nothing until the application sets one, for example
// propagation.TraceContext{}. Only entries with a traceparent field are
// looked at.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *config) {
		if p == nil {
			c.fail("nil propagator")
			return
		}
		c.otel.Propagator = p
	}
}

// WithMeterProvider sets the MeterProvider of the consumer's metrics.
// Default: the global one (otel.GetMeterProvider), including one the
// application sets after New.
//
// Counters (attributes messaging.system, messaging.destination.name and
// messaging.consumer.group.name), counted where Stats counts:
// midstream.messages.processed (Stats.Handled), .failed (Stats.Failed),
// .retried (Stats.Retried), .reclaimed (Stats.Reclaimed), .dead_lettered
// (Stats.DeadLettered), .deleted_while_pending (Stats.Deleted).
// Histograms, in seconds: midstream.handler.duration (every handler call)
// and midstream.e2e.latency (from the time in the entry's ID, when it was
// added, to the end of a successful handler call; retries included).
// midstream.messages.in_flight (an observable up-down counter) is the
// number of handlers running.
//
// While Run runs, the consumer also registers the gauges of
// health.Gauges for its group and dead-letter stream (lag, pending, oldest
// pending age, consumers, dead-letter depth, stream length), read with at
// most one cheap health.Snapshot per collection and per second.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) {
		if mp == nil {
			c.fail("nil meter provider")
			return
		}
		c.otel.MeterProvider = mp
	}
}

// deadLetterOptions are the options of the default dead-letter queue.
func deadLetterOptions(o telemetry.Providers) []deadletter.Option {
	if o.TracerProvider == nil {
		return nil
	}
	return []deadletter.Option{deadletter.WithTracerProvider(o.TracerProvider)}
}

// statCounter is one of the totals of Stats, also counted by an
// OpenTelemetry counter when it has one.
type statCounter struct {
	atomic.Int64
	otel metric.Int64Counter // nil: not exported
	opts []metric.AddOption
}

// Add adds n to the total and to the counter, and returns the new total.
func (s *statCounter) Add(n int64) int64 {
	if s.otel != nil {
		s.otel.Add(context.Background(), n, s.opts...)
	}
	return s.Int64.Add(n)
}

// observer traces and measures a Consumer's work.
type observer struct {
	tracer   telemetry.Tracer
	prop     propagation.TextMapPropagator // nil: the global one
	spanName string
	attrs    []attribute.KeyValue // of every process span
	meter    metric.Meter
	duration metric.Float64Histogram
	e2e      metric.Float64Histogram
	recOpts  []metric.RecordOption
	inFlight metric.Int64ObservableUpDownCounter
	obsOpts  []metric.ObserveOption
	gauges   *health.Gauges
}

// initObservability sets up c's tracer and instruments. Instrument errors
// go to otel.Handle: metrics never stop a consumer.
func (c *Consumer) initObservability() {
	cfg := c.cfg.otel
	o := &observer{
		tracer:   telemetry.NewTracer(cfg.TracerProvider),
		prop:     cfg.Propagator,
		spanName: "process " + c.stream,
		attrs: []attribute.KeyValue{
			telemetry.System,
			telemetry.KeyDestination.String(c.stream),
			telemetry.KeyGroup.String(c.group),
			telemetry.KeyClientID.String(c.cfg.name),
			telemetry.KeyOperationType.String(telemetry.OpProcess),
			telemetry.KeyOperationName.String("process"),
		},
		meter: telemetry.Meter(cfg.MeterProvider),
	}
	attrs := telemetry.StreamAttrs(c.stream, c.group)
	o.recOpts = []metric.RecordOption{attrs}
	o.obsOpts = []metric.ObserveOption{attrs}
	addOpts := []metric.AddOption{attrs}
	counter := func(s *statCounter, name, desc string) {
		inst, err := o.meter.Int64Counter(name, metric.WithUnit("{message}"), metric.WithDescription(desc))
		if err != nil {
			otel.Handle(err)
			return
		}
		s.otel, s.opts = inst, addOpts
	}
	counter(&c.stats.handled, telemetry.MetricProcessed, "Messages whose handler succeeded.")
	counter(&c.stats.failed, telemetry.MetricFailed, "Handler calls that failed (error or panic).")
	counter(&c.stats.retried, telemetry.MetricRetried, "Failed messages left pending for another delivery.")
	counter(&c.stats.reclaimed, telemetry.MetricReclaimed, "Idle pending entries claimed to be delivered again.")
	counter(&c.stats.deadLettered, telemetry.MetricDeadLettered, "Entries moved to the dead-letter stream.")
	counter(&c.stats.deleted, telemetry.MetricDeleted, "Pending entries found deleted or trimmed, acknowledged unhandled.")
	var err error
	if o.duration, err = o.meter.Float64Histogram(telemetry.MetricHandlerTime, metric.WithUnit("s"),
		metric.WithDescription("Duration of handler calls."),
		metric.WithExplicitBucketBoundaries(telemetry.SecondsBuckets...)); err != nil {
		otel.Handle(err)
	}
	if o.e2e, err = o.meter.Float64Histogram(telemetry.MetricE2ELatency, metric.WithUnit("s"),
		metric.WithDescription("Time from an entry's addition (its ID's time) to the end of its successful handling."),
		metric.WithExplicitBucketBoundaries(telemetry.SecondsBuckets...)); err != nil {
		otel.Handle(err)
	}
	if o.inFlight, err = o.meter.Int64ObservableUpDownCounter(telemetry.MetricInFlight, metric.WithUnit("{message}"),
		metric.WithDescription("Handlers running.")); err != nil {
		otel.Handle(err)
	}
	if o.gauges, err = health.NewGauges(cfg.MeterProvider); err != nil {
		otel.Handle(err)
	}
	c.obs = o
}

var consumerKind = trace.WithSpanKind(trace.SpanKindConsumer)

// attrBufs holds the buffers process spans' attributes are gathered in.
var attrBufs = sync.Pool{New: func() any { return new([]attribute.KeyValue) }}

// processing is the observation of one message being handled.
type processing struct {
	span  trace.Span // nil when not tracing
	start time.Time  // zero when no histogram records
}

// begin starts observing m: the returned ctx carries its span, if tracing
// is on. While tracing and metrics are off it does nothing and allocates
// nothing.
func (o *observer) begin(ctx context.Context, m *Message) (context.Context, processing) {
	var p processing
	if o.tracer.On() {
		ctx = telemetry.Extract(ctx, o.prop, carrier{m})
		// Attributes are set once the span is known to record: a span the
		// sampler drops (the producer's choice, with a parent-based
		// sampler) then costs a third as much.
		ctx, p.span = o.tracer.Start(ctx, o.spanName, consumerKind)
		if p.span.IsRecording() {
			buf := attrBufs.Get().(*[]attribute.KeyValue)
			attrs := append(append((*buf)[:0], o.attrs...), telemetry.KeyMessageID.String(m.ID), telemetry.KeyDeliveryCount.Int64(m.Deliveries))
			p.span.SetAttributes(attrs...) // copies them
			clear(attrs)
			*buf = attrs
			attrBufs.Put(buf)
		}
	}
	if o.timed() {
		p.start = time.Now()
	}
	return ctx, p
}

// timed reports whether a histogram records.
func (o *observer) timed() bool {
	bg := context.Background()
	return (o.duration != nil && o.duration.Enabled(bg)) || (o.e2e != nil && o.e2e.Enabled(bg))
}

// handled records the outcome of m's handler call.
func (o *observer) handled(p *processing, m *Message, err error) {
	if !p.start.IsZero() {
		now := time.Now()
		bg := context.Background()
		if o.duration != nil {
			o.duration.Record(bg, now.Sub(p.start).Seconds(), o.recOpts...)
		}
		if err == nil && o.e2e != nil {
			if id, perr := midstream.ParseID(m.ID); perr == nil {
				o.e2e.Record(bg, max(now.Sub(id.Time()), 0).Seconds(), o.recOpts...)
			}
		}
	}
	if err != nil && p.span != nil {
		telemetry.SetError(p.span, err)
	}
}

// rejected marks m's span failed without a handler call.
func (o *observer) rejected(p *processing, err error) {
	if p.span != nil {
		telemetry.SetError(p.span, err)
	}
}

// end ends m's span, after its acknowledgement was queued or it was
// dead-lettered.
func (o *observer) end(p *processing) {
	if p.span != nil {
		p.span.End()
	}
}

// startReclaim starts the span of a reclaim pass that has work (entries to
// claim or past the delivery limit), if tracing is on.
func (o *observer) startReclaim(ctx context.Context, stream, group string, claim, expired int) (context.Context, trace.Span) {
	if (claim == 0 && expired == 0) || !o.tracer.On() {
		return ctx, nil
	}
	return o.tracer.Start(ctx, "reclaim "+stream, trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(
		telemetry.System,
		telemetry.KeyDestination.String(stream),
		telemetry.KeyGroup.String(group),
		telemetry.KeyOperationType.String(telemetry.OpReceive),
		telemetry.KeyOperationName.String("reclaim"),
		telemetry.KeyReclaimExpired.Int(expired),
	))
}

// endReclaim ends the span of a reclaim pass.
func (o *observer) endReclaim(span trace.Span, claimed int, err error) {
	if span == nil {
		return
	}
	span.SetAttributes(telemetry.KeyReclaimClaimed.Int(claimed), telemetry.KeyBatchCount.Int(claimed))
	if err != nil {
		telemetry.SetError(span, err)
	}
	span.End()
}

// observeRun registers, for one Run, the in-flight counter over d's workers
// and the health gauges of the group; the returned function unregisters
// them.
func (c *Consumer) observeRun(d *dispatcher) (stop func()) {
	o := c.obs
	var regs []metric.Registration
	if o.inFlight != nil {
		reg, err := o.meter.RegisterCallback(func(_ context.Context, ob metric.Observer) error {
			var n int64
			for i := range d.running {
				if d.running[i].Load() != nil {
					n++
				}
			}
			ob.ObserveInt64(o.inFlight, n, o.obsOpts...)
			return nil
		}, o.inFlight)
		if err != nil {
			otel.Handle(err)
		} else {
			regs = append(regs, reg)
		}
	}
	if o.gauges != nil {
		reg, err := o.gauges.Register(c.client, c.stream,
			health.WithGroups(c.group), health.WithDeadLetterKey(c.dlq.Key()), health.WithoutConsumers())
		if err != nil {
			otel.Handle(err)
		} else {
			regs = append(regs, reg)
		}
	}
	return func() {
		for _, r := range regs {
			if err := r.Unregister(); err != nil {
				otel.Handle(err)
			}
		}
	}
}

// carrier reads a message's trace context in place.
type carrier struct{ m *Message }

func (c carrier) Get(key string) string { return c.m.Field(key) }
func (c carrier) Set(string, string)    {}
func (c carrier) Keys() []string {
	keys := make([]string, 0, c.m.Len())
	for k := range c.m.All() {
		keys = append(keys, k)
	}
	return keys
}
