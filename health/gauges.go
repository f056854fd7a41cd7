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
// on a meter and registered for any number of streams (Register) and
// partitioned streams (RegisterPartitioned, one point per partition). The
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
	w.g.observe(o, h, w.streamAttrs, func(group string) metric.ObserveOption {
		attrs, ok := w.groupAttrs[group]
		if !ok {
			attrs = metric.WithAttributeSet(attribute.NewSet(telemetry.System,
				telemetry.KeyDestination.String(w.stream), telemetry.KeyGroup.String(group)))
			w.groupAttrs[group] = attrs
		}
		return attrs
	})
	return nil
}

// observe reports one stream's snapshot with the stream's attributes and,
// per group, groupAttrs(group).
func (g *Gauges) observe(o metric.Observer, h StreamHealth, streamAttrs metric.ObserveOption, groupAttrs func(string) metric.ObserveOption) {
	o.ObserveInt64(g.length, h.Length, streamAttrs)
	o.ObserveInt64(g.dlq, h.DeadLetter.Length, streamAttrs)
	o.ObserveInt64(g.delaySize, h.Delayed.Size, streamAttrs)
	o.ObserveFloat64(g.delayOverdue, h.Delayed.OldestOverdueAge.Seconds(), streamAttrs)
	for _, gh := range h.Groups {
		attrs := groupAttrs(gh.Name)
		if gh.LagKnown {
			o.ObserveInt64(g.lag, gh.Lag, attrs)
		}
		o.ObserveInt64(g.pending, gh.Pending, attrs)
		o.ObserveInt64(g.consumers, gh.ConsumerCount, attrs)
		o.ObserveFloat64(g.oldestAge, gh.OldestPendingAge.Seconds(), attrs)
	}
}

// KeyPartition is the attribute that names a partition's index (0, 1, …)
// on the points of RegisterPartitioned: OpenTelemetry's
// messaging.destination.partition.id.
const KeyPartition = attribute.Key("messaging.destination.partition.id")

// RegisterPartitionedGauges is NewGauges(mp) followed by
// RegisterPartitioned.
func RegisterPartitionedGauges(mp metric.MeterProvider, client redis.UniversalClient, stream string, opts ...Option) (metric.Registration, error) {
	g, err := NewGauges(mp)
	if err != nil {
		return nil, err
	}
	return g.RegisterPartitioned(client, stream, opts...)
}

// RegisterPartitioned reports the health of the partitioned stream stream
// (SnapshotPartitioned with opts) through the gauges, one point per
// partition, until the returned registration is unregistered. The points
// carry messaging.destination.name the logical stream, and
// messaging.destination.partition.id (KeyPartition) the partition's index:
// sum them by messaging.destination.name for the logical stream's length,
// dead letters, lag and pending, take the max for the oldest pending age.
// (A consumer.Consumer of a partitioned stream reports its own gauges per
// partition under the partition's key, without KeyPartition.) Lag is
// reported per partition where Redis can tell it: a sum of lag is the
// logical stream's lag only when there is one lag point per partition (as
// many as the partitions' count); otherwise it is a lower bound. A
// partition that cannot be read (its node down) reports no point at that
// collection, while the others do.
//
// Each collection reads the stored layout (one HGETALL) and snapshots the
// partitions, reusing a snapshot younger than the minimum interval as
// Register does. While the stream has no stored layout it reports nothing;
// other errors go to the MeterProvider's error handling. Options and
// errors are SnapshotPartitioned's. The caller keeps ownership of client.
func (g *Gauges) RegisterPartitioned(client redis.UniversalClient, stream string, opts ...Option) (metric.Registration, error) {
	cfg, err := newPartitionedConfig(client, stream, opts)
	if err != nil {
		return nil, err
	}
	w := &partitionedWatch{g: g, client: client, stream: stream, cfg: cfg, attrs: map[partitionAttrKey]metric.ObserveOption{}}
	return g.meter.RegisterCallback(w.observe, g.length, g.dlq, g.lag, g.pending, g.oldestAge, g.consumers,
		g.delaySize, g.delayOverdue)
}

// partitionedWatch is one registration of a partitioned stream.
type partitionedWatch struct {
	g      *Gauges
	client redis.UniversalClient
	stream string
	cfg    config

	mu      sync.Mutex
	attrs   map[partitionAttrKey]metric.ObserveOption
	last    PartitionedHealth
	lastErr error
	taken   time.Time
}

// partitionAttrKey names the attributes of a partition, or of a group in it.
type partitionAttrKey struct {
	partition int
	group     string
}

func (w *partitionedWatch) attr(partition int, group string) metric.ObserveOption {
	k := partitionAttrKey{partition, group}
	a, ok := w.attrs[k]
	if !ok {
		kvs := []attribute.KeyValue{telemetry.System, telemetry.KeyDestination.String(w.stream), KeyPartition.Int(partition)}
		if group != "" {
			kvs = append(kvs, telemetry.KeyGroup.String(group))
		}
		a = metric.WithAttributeSet(attribute.NewSet(kvs...))
		w.attrs[k] = a
	}
	return a
}

func (w *partitionedWatch) observe(ctx context.Context, o metric.Observer) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.taken.IsZero() || time.Since(w.taken) >= w.cfg.minInterval {
		sctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
		w.last, w.lastErr = snapshotPartitioned(sctx, w.client, w.stream, &w.cfg)
		cancel()
		w.taken = time.Now()
	}
	if errors.Is(w.lastErr, midstream.ErrNoStream) && w.last.Partitions == nil {
		return nil
	}
	// The partitions that were read are reported even when others were
	// not (their node down, say); the error tells about those.
	for i, h := range w.last.Partitions {
		if w.last.Errors != nil && w.last.Errors[i] != nil {
			continue
		}
		w.g.observe(o, h, w.attr(i, ""), func(group string) metric.ObserveOption { return w.attr(i, group) })
	}
	return w.lastErr
}
