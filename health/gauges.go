package health

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/telemetry"
)

// Gauges are OpenTelemetry observable gauges of stream health, created once
// on a meter and registered for any number of streams (Register). The
// consumer package registers them for its group while Run runs; register
// them yourself to watch streams no consumer of this process reads.
//
// Instruments (attributes messaging.system "redis",
// messaging.destination.name the stream and, per group,
// messaging.consumer.group.name):
//
//   - midstream.stream.length: entries in the stream.
//   - midstream.deadletter.depth: entries in its dead-letter stream.
//   - midstream.group.lag: entries not yet delivered to the group. Not
//     reported while Redis cannot tell (GroupHealth.LagKnown false: after
//     an XDEL past the group's position, or on Redis 6.2), rather than
//     reported wrong.
//   - midstream.group.pending: entries delivered and not acknowledged.
//   - midstream.group.pending.oldest_age: seconds since the oldest pending
//     entry was added (0 when nothing is pending).
//   - midstream.group.consumers: consumers in the group.
//   - midstream.delay.size: entries waiting in the stream's delay set.
//   - midstream.delay.overdue_age: seconds since the earliest due entry of
//     the delay set fell due (0 when none is due): how late movers are.
type Gauges struct {
	length, dlq, lag, pending, consumers metric.Int64ObservableGauge
	oldestAge                            metric.Float64ObservableGauge
	delaySize                            metric.Int64ObservableGauge
	delayOverdue                         metric.Float64ObservableGauge
	meter                                metric.Meter
}

// NewGauges creates the instruments on mp's meter, or on the global
// MeterProvider's when mp is nil (a global meter taken before the
// application sets a provider forwards to the one set later).
func NewGauges(mp metric.MeterProvider) (*Gauges, error) {
	m := telemetry.Meter(mp)
	g := &Gauges{meter: m}
	var errs [8]error
	g.length, errs[0] = m.Int64ObservableGauge(telemetry.MetricStreamLength, metric.WithUnit("{message}"),
		metric.WithDescription("Entries in the stream (XLEN)."))
	g.dlq, errs[1] = m.Int64ObservableGauge(telemetry.MetricDeadLetter, metric.WithUnit("{message}"),
		metric.WithDescription("Entries in the stream's dead-letter stream."))
	g.lag, errs[2] = m.Int64ObservableGauge(telemetry.MetricGroupLag, metric.WithUnit("{message}"),
		metric.WithDescription("Entries not yet delivered to the group; absent while Redis cannot tell."))
	g.pending, errs[3] = m.Int64ObservableGauge(telemetry.MetricGroupPending, metric.WithUnit("{message}"),
		metric.WithDescription("Entries delivered to the group and not acknowledged."))
	g.oldestAge, errs[4] = m.Float64ObservableGauge(telemetry.MetricOldestAge, metric.WithUnit("s"),
		metric.WithDescription("Age of the group's oldest pending entry, by its ID's time."))
	g.consumers, errs[5] = m.Int64ObservableGauge(telemetry.MetricGroupConsumers, metric.WithUnit("{consumer}"),
		metric.WithDescription("Consumers in the group."))
	g.delaySize, errs[6] = m.Int64ObservableGauge(telemetry.MetricDelaySize, metric.WithUnit("{message}"),
		metric.WithDescription("Entries waiting in the stream's delay set."))
	g.delayOverdue, errs[7] = m.Float64ObservableGauge(telemetry.MetricDelayOverdue, metric.WithUnit("s"),
		metric.WithDescription("Time since the delay set's earliest due entry fell due; 0 when none is due."))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	return g, nil
}

// RegisterGauges is NewGauges(mp) followed by Register.
func RegisterGauges(mp metric.MeterProvider, client redis.UniversalClient, stream string, opts ...Option) (metric.Registration, error) {
	g, err := NewGauges(mp)
	if err != nil {
		return nil, err
	}
	return g.Register(client, stream, opts...)
}

// Register reports stream's health (Snapshot with opts) through the gauges
// until the returned registration is unregistered. Each collection takes at
// most one snapshot, O(groups + consumers) (WithoutConsumers makes it
// O(groups)), and a snapshot younger than the minimum interval
// (WithMinInterval, default DefaultMinInterval) is reused instead, so a
// short collection interval or several readers cost Redis nothing more. A
// stream that does not exist reports nothing; other errors go to the
// MeterProvider's error handling (the callback's error). The caller keeps
// ownership of client.
func (g *Gauges) Register(client redis.UniversalClient, stream string, opts ...Option) (metric.Registration, error) {
	cfg, err := newConfig(client, stream, opts)
	if err != nil {
		return nil, err
	}
	w := &watch{g: g, client: client, stream: stream, cfg: cfg,
		streamAttrs: telemetry.StreamAttrs(stream, ""), groupAttrs: map[string]metric.ObserveOption{}}
	return g.meter.RegisterCallback(w.observe, g.length, g.dlq, g.lag, g.pending, g.oldestAge, g.consumers,
		g.delaySize, g.delayOverdue)
}

// snapshotTimeout bounds the Redis work of one collection.
const snapshotTimeout = 5 * time.Second

// watch is one registration: a stream and its cached snapshot.
type watch struct {
	g           *Gauges
	client      redis.UniversalClient
	stream      string
	cfg         config
	streamAttrs metric.ObserveOption
	groupAttrs  map[string]metric.ObserveOption // guarded by mu

	mu      sync.Mutex
	last    StreamHealth
	lastErr error
	taken   time.Time
}

// get returns the cached snapshot, or takes a new one if it is older than
// the minimum interval; one at a time.
func (w *watch) get(ctx context.Context) (StreamHealth, error) {
	if !w.taken.IsZero() && time.Since(w.taken) < w.cfg.minInterval {
		return w.last, w.lastErr
	}
	ctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
	defer cancel()
	w.last, w.lastErr = snapshot(ctx, w.client, w.stream, &w.cfg)
	w.taken = time.Now()
	return w.last, w.lastErr
}

func (w *watch) observe(ctx context.Context, o metric.Observer) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	h, err := w.get(ctx)
	if errors.Is(err, midstream.ErrNoStream) {
		return nil
	}
	if err != nil {
		return err
	}
	g := w.g
	o.ObserveInt64(g.length, h.Length, w.streamAttrs)
	o.ObserveInt64(g.dlq, h.DeadLetter.Length, w.streamAttrs)
	o.ObserveInt64(g.delaySize, h.Delayed.Size, w.streamAttrs)
	o.ObserveFloat64(g.delayOverdue, h.Delayed.OldestOverdueAge.Seconds(), w.streamAttrs)
	for _, gh := range h.Groups {
		attrs, ok := w.groupAttrs[gh.Name]
		if !ok {
			attrs = metric.WithAttributeSet(attribute.NewSet(telemetry.System,
				telemetry.KeyDestination.String(w.stream), telemetry.KeyGroup.String(gh.Name)))
			w.groupAttrs[gh.Name] = attrs
		}
		if gh.LagKnown {
			o.ObserveInt64(g.lag, gh.Lag, attrs)
		}
		o.ObserveInt64(g.pending, gh.Pending, attrs)
		o.ObserveInt64(g.consumers, gh.ConsumerCount, attrs)
		o.ObserveFloat64(g.oldestAge, gh.OldestPendingAge.Seconds(), attrs)
	}
	return nil
}
