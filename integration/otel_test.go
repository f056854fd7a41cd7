package integration

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/health"
	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/producer"
)

// otelTracing returns an SDK TracerProvider sampling everything into a
// span recorder.
func otelTracing(t *testing.T) (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, rec
}

// otelMetrics returns an SDK MeterProvider read by a ManualReader.
func otelMetrics(t *testing.T) (*sdkmetric.MeterProvider, *sdkmetric.ManualReader) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return mp, reader
}

// otelCollect reads every metric, by name.
func otelCollect(t *testing.T, reader *sdkmetric.ManualReader) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("collect: %v", err)
	}
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// otelInt returns the value of the int64 sum or gauge name at the point
// whose attributes include want, and whether there is one.
func otelInt(ms map[string]metricdata.Aggregation, name string, want ...attribute.KeyValue) (int64, bool) {
	var points []metricdata.DataPoint[int64]
	switch d := ms[name].(type) {
	case metricdata.Sum[int64]:
		points = d.DataPoints
	case metricdata.Gauge[int64]:
		points = d.DataPoints
	}
	for _, p := range points {
		if otelHas(p.Attributes, want) {
			return p.Value, true
		}
	}
	return 0, false
}

// otelHistCount returns the number of values in the histogram name.
func otelHistCount(ms map[string]metricdata.Aggregation, name string) uint64 {
	h, _ := ms[name].(metricdata.Histogram[float64])
	var n uint64
	for _, p := range h.DataPoints {
		n += p.Count
	}
	return n
}

func otelHas(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

func otelAttr(s sdktrace.ReadOnlySpan, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func otelSpans(rec *tracetest.SpanRecorder, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// TestOtelTraceCrossesRedis: the consumer span of an entry is a child of the
// span that published it, in the same trace, with the messaging attributes;
// the handler's ctx carries it; a batch's entries are children of the batch
// span; dead-letter moves, reclaim passes and redrives have spans.
func TestOtelTraceCrossesRedis(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	stream, group := srv.Key("{traced}"), "g"
	tp, rec := otelTracing(t)
	prop := propagation.TraceContext{}

	p, err := producer.New[map[string]string](srv.Client, stream, producer.WithTracerProvider(tp), producer.WithPropagator(prop))
	if err != nil {
		t.Fatal(err)
	}
	one, err := p.Publish(ctx, map[string]string{"kind": "good"})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := p.PublishBatch(ctx, []map[string]string{{"kind": "good"}, {"kind": "flaky"}, {"kind": "poison"}})
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	handlerSpans := map[string]trace.SpanContext{} // message ID → span in the handler's ctx
	var flakyFailed atomic.Bool
	h := consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		mu.Lock()
		handlerSpans[m.ID] = trace.SpanContextFromContext(ctx)
		mu.Unlock()
		switch m.Field("kind") {
		case "poison":
			return consumer.Permanent(errors.New("poison"))
		case "flaky":
			if flakyFailed.CompareAndSwap(false, true) {
				return errors.New("flaky")
			}
		}
		return nil
	})
	c := newConsumer(t, srv.Client, stream, group, h, consumer.WithStart(consumer.StartBeginning),
		consumer.WithTracerProvider(tp), consumer.WithPropagator(prop),
		consumer.WithMinIdle(200*time.Millisecond), consumer.WithClaimInterval(50*time.Millisecond))
	stop := runConsumer(t, c)
	waitFor(t, 30*time.Second, "every entry handled or dead-lettered", func() bool {
		s := c.Stats()
		return s.Handled == 3 && s.DeadLettered == 1
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	publishes := otelSpans(rec, "publish "+stream)
	if len(publishes) != 2 {
		t.Fatalf("%d publish spans, want 2", len(publishes))
	}
	pubOne, pubBatch := publishes[0], publishes[1]
	if pubOne.SpanKind() != trace.SpanKindProducer {
		t.Errorf("publish span kind %v", pubOne.SpanKind())
	}
	if v, _ := otelAttr(pubOne, "messaging.message.id"); v.AsString() != one {
		t.Errorf("publish span message id %q, want %q", v.AsString(), one)
	}
	if v, _ := otelAttr(pubBatch, "messaging.batch.message_count"); v.AsInt64() != 3 {
		t.Errorf("batch span message count %d, want 3", v.AsInt64())
	}

	parentOf := map[string]sdktrace.ReadOnlySpan{one: pubOne, batch[0]: pubBatch, batch[1]: pubBatch, batch[2]: pubBatch}
	processes := otelSpans(rec, "process "+stream)
	if len(processes) != 5 { // one, batch[0], flaky twice, poison
		t.Fatalf("%d process spans, want 5", len(processes))
	}
	byID := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range processes {
		id, _ := otelAttr(s, "messaging.message.id")
		byID[id.AsString()] = append(byID[id.AsString()], s)
		pub := parentOf[id.AsString()]
		if pub == nil {
			t.Fatalf("process span for unknown message %q", id.AsString())
		}
		if s.SpanContext().TraceID() != pub.SpanContext().TraceID() {
			t.Errorf("message %s: process span in trace %s, publish span in %s", id.AsString(), s.SpanContext().TraceID(), pub.SpanContext().TraceID())
		}
		if s.Parent().SpanID() != pub.SpanContext().SpanID() || !s.Parent().IsRemote() {
			t.Errorf("message %s: process span's parent %s (remote %t), want the publish span %s", id.AsString(), s.Parent().SpanID(), s.Parent().IsRemote(), pub.SpanContext().SpanID())
		}
		if s.SpanKind() != trace.SpanKindConsumer {
			t.Errorf("process span kind %v", s.SpanKind())
		}
		for key, want := range map[string]string{
			"messaging.system": "redis", "messaging.destination.name": stream, "messaging.consumer.group.name": group,
			"messaging.operation.type": "process", "messaging.client.id": c.Name(),
		} {
			if v, _ := otelAttr(s, key); v.AsString() != want {
				t.Errorf("process span %s = %q, want %q", key, v.AsString(), want)
			}
		}
		mu.Lock()
		inHandler := handlerSpans[id.AsString()]
		mu.Unlock()
		if inHandler.TraceID() != s.SpanContext().TraceID() {
			t.Errorf("message %s: the handler's ctx holds trace %s, want %s", id.AsString(), inHandler.TraceID(), s.SpanContext().TraceID())
		}
	}
	flaky := byID[batch[1]]
	if len(flaky) != 2 {
		t.Fatalf("%d process spans for the flaky entry, want 2", len(flaky))
	}
	for i, s := range flaky {
		d, _ := otelAttr(s, "messaging.redis.delivery_count")
		if d.AsInt64() != int64(i+1) {
			t.Errorf("flaky delivery %d: delivery count attribute %d", i+1, d.AsInt64())
		}
	}
	if flaky[0].Status().Code != codes.Error || flaky[1].Status().Code == codes.Error {
		t.Errorf("flaky statuses %v, %v: want error then not", flaky[0].Status(), flaky[1].Status())
	}

	poison := byID[batch[2]][0]
	moves := otelSpans(rec, "dead_letter "+stream)
	if len(moves) != 1 {
		t.Fatalf("%d dead_letter spans, want 1", len(moves))
	}
	if moves[0].Parent().SpanID() != poison.SpanContext().SpanID() {
		t.Errorf("dead_letter span's parent %s, want the poison entry's process span %s", moves[0].Parent().SpanID(), poison.SpanContext().SpanID())
	}
	if v, _ := otelAttr(moves[0], "midstream.dead_letter.moved"); !v.AsBool() {
		t.Error("dead_letter span says nothing moved")
	}
	reclaims := otelSpans(rec, "reclaim "+stream)
	claimed := int64(0)
	for _, s := range reclaims {
		v, _ := otelAttr(s, "midstream.reclaim.claimed")
		claimed += v.AsInt64()
	}
	if claimed != 1 {
		t.Errorf("reclaim spans claimed %d entries in all, want 1", claimed)
	}

	q, err := deadletter.New(srv.Client, stream, deadletter.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	res, err := q.Redrive(ctx, deadletter.RedriveOptions{})
	if err != nil || res.Redriven != 1 {
		t.Fatalf("Redrive: %+v, %v", res, err)
	}
	redrives := otelSpans(rec, "redrive "+q.Key())
	if len(redrives) != 1 {
		t.Fatalf("%d redrive spans, want 1", len(redrives))
	}
	if v, _ := otelAttr(redrives[0], "messaging.batch.message_count"); v.AsInt64() != 1 {
		t.Errorf("redrive span counts %d entries, want 1", v.AsInt64())
	}
}

// TestOtelMetricsCounters: after a run with good entries, entries failing
// once (then reclaimed), entries failing for good (dead-lettered) and one
// entry deleted while pending, every counter says exactly what happened.
func TestOtelMetricsCounters(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	stream, group := srv.Key("{counted}"), "g"
	mp, reader := otelMetrics(t)
	const good, flaky, poison = 20, 3, 2

	p, err := producer.New[map[string]string](srv.Client, stream, producer.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	var values []map[string]string
	for range good {
		values = append(values, map[string]string{"kind": "good"})
	}
	for range flaky {
		values = append(values, map[string]string{"kind": "flaky"})
	}
	for range poison {
		values = append(values, map[string]string{"kind": "poison"})
	}
	if _, err := p.PublishBatch(ctx, values); err != nil {
		t.Fatal(err)
	}
	doomed, err := p.Publish(ctx, map[string]string{"kind": "doomed"})
	if err != nil {
		t.Fatal(err)
	}

	doomedFailed := make(chan struct{})
	h := consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		switch m.Field("kind") {
		case "flaky":
			if m.Deliveries == 1 {
				return errors.New("flaky")
			}
		case "poison":
			return consumer.Permanent(errors.New("poison"))
		case "doomed":
			if m.Deliveries == 1 {
				defer close(doomedFailed)
			}
			return errors.New("doomed")
		}
		return nil
	})
	c := newConsumer(t, srv.Client, stream, group, h, consumer.WithStart(consumer.StartBeginning),
		consumer.WithMeterProvider(mp), consumer.WithMinIdle(300*time.Millisecond), consumer.WithClaimInterval(50*time.Millisecond))
	stop := runConsumer(t, c)
	select {
	case <-doomedFailed:
	case <-time.After(30 * time.Second):
		t.Fatal("the doomed entry was never handled")
	}
	// Deleted while pending: the reclaim loop finds it gone and acks it.
	if err := srv.Client.XDel(ctx, stream, doomed).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "every entry settled", func() bool {
		s := c.Stats()
		return s.Handled == good+flaky && s.DeadLettered == poison && s.Deleted == 1 && pendingCount(t, srv.Client, stream, group) == 0
	})
	ms := otelCollect(t, reader)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	attrs := []attribute.KeyValue{
		attribute.String("messaging.system", "redis"),
		attribute.String("messaging.destination.name", stream),
	}
	groupAttrs := append(attrs, attribute.String("messaging.consumer.group.name", group))
	for _, tc := range []struct {
		name  string
		want  int64
		attrs []attribute.KeyValue
	}{
		{"midstream.messages.published", good + flaky + poison + 1, attrs},
		{"midstream.messages.processed", good + flaky, groupAttrs},
		{"midstream.messages.failed", flaky + poison + 1, groupAttrs},
		{"midstream.messages.retried", flaky + 1, groupAttrs},
		{"midstream.messages.reclaimed", flaky, groupAttrs},
		{"midstream.messages.dead_lettered", poison, groupAttrs},
		{"midstream.messages.deleted_while_pending", 1, groupAttrs},
	} {
		if got, ok := otelInt(ms, tc.name, tc.attrs...); !ok || got != tc.want {
			t.Errorf("%s = %d (reported %t), want %d", tc.name, got, ok, tc.want)
		}
	}
	s := c.Stats()
	if s.Retried != flaky+1 {
		t.Errorf("Stats.Retried = %d, want %d", s.Retried, flaky+1)
	}
	if n := otelHistCount(ms, "midstream.handler.duration"); n != uint64(good+2*flaky+poison+1) {
		t.Errorf("handler.duration holds %d calls, want %d", n, good+2*flaky+poison+1)
	}
	if n := otelHistCount(ms, "midstream.e2e.latency"); n != uint64(good+flaky) {
		t.Errorf("e2e.latency holds %d entries, want %d", n, good+flaky)
	}
	if v, ok := otelInt(ms, "midstream.messages.in_flight", groupAttrs...); !ok || v != 0 {
		t.Errorf("in_flight = %d (reported %t), want 0", v, ok)
	}
	if v, ok := otelInt(ms, "midstream.deadletter.depth", attrs...); !ok || v != poison {
		t.Errorf("deadletter.depth = %d (reported %t), want %d", v, ok, poison)
	}
}

// TestOtelGaugesLagAndPending: a group with a known backlog reports its lag,
// pending count, consumers and the stream's and DLQ's lengths; after an
// undelivered entry is deleted (XDEL) Redis cannot tell the lag, and no lag
// point is reported while the rest still is.
func TestOtelGaugesLagAndPending(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream, group := srv.Key("{gauged}"), "g"
	mp, reader := otelMetrics(t)
	ids := publishN(t, srv.Client, stream, 0, 10)
	if err := srv.Client.XAdd(ctx, &redis.XAddArgs{Stream: deadletter.Key(stream), Values: []string{"x", "1"}}).Err(); err != nil {
		t.Fatal(err)
	}

	started, release := make(chan struct{}, 10), make(chan struct{})
	h := consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		started <- struct{}{}
		<-release
		return nil
	})
	c := newConsumer(t, srv.Client, stream, group, h, consumer.WithStart(consumer.StartBeginning), consumer.WithMeterProvider(mp),
		consumer.WithConcurrency(1), consumer.WithBatchSize(1), consumer.WithMaxInFlight(1))
	stop := runConsumer(t, c)
	defer func() {
		close(release)
		_ = stop()
	}()
	<-started // one entry delivered and held: pending 1, lag 9

	attrs := []attribute.KeyValue{
		attribute.String("messaging.destination.name", stream),
		attribute.String("messaging.consumer.group.name", group),
	}
	ms := otelCollect(t, reader)
	for _, tc := range []struct {
		name string
		want int64
	}{
		{"midstream.group.lag", 9},
		{"midstream.group.pending", 1},
		{"midstream.group.consumers", 1},
		{"midstream.messages.in_flight", 1},
	} {
		if got, ok := otelInt(ms, tc.name, attrs...); !ok || got != tc.want {
			t.Errorf("%s = %d (reported %t), want %d", tc.name, got, ok, tc.want)
		}
	}
	for name, want := range map[string]int64{"midstream.stream.length": 10, "midstream.deadletter.depth": 1} {
		if got, ok := otelInt(ms, name, attrs[0]); !ok || got != want {
			t.Errorf("%s = %d (reported %t), want %d", name, got, ok, want)
		}
	}
	// The group's redrive stream (read by the consumer's side consumer)
	// may report a point of its own: look at the stream's.
	oldest, points := -1.0, 0
	if g, ok := ms["midstream.group.pending.oldest_age"].(metricdata.Gauge[float64]); ok {
		for _, p := range g.DataPoints {
			if v, _ := p.Attributes.Value("messaging.destination.name"); v.AsString() == stream {
				oldest, points = p.Value, points+1
			}
		}
	}
	if points != 1 || oldest < 0 || oldest > 60 {
		t.Errorf("oldest_age of %s: %d points, %v: %+v", stream, points, oldest, ms["midstream.group.pending.oldest_age"])
	}

	// An undelivered entry deleted: the lag is unknown.
	if err := srv.Client.XDel(ctx, stream, ids[len(ids)-1]).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(health.DefaultMinInterval + 100*time.Millisecond) // past the cached snapshot
	ms = otelCollect(t, reader)
	if got, ok := otelInt(ms, "midstream.group.lag", attrs...); ok {
		t.Errorf("lag reported as %d after XDEL, want no point", got)
	}
	if got, ok := otelInt(ms, "midstream.group.pending", attrs...); !ok || got != 1 {
		t.Errorf("pending = %d (reported %t) after XDEL, want 1", got, ok)
	}
	h2, err := health.Snapshot(ctx, srv.Client, stream)
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := h2.Group(group); g.LagKnown {
		t.Errorf("Snapshot after XDEL: lag %d known, want unknown", g.Lag)
	}
}

// TestHealthSnapshotMatchesRedis: every value of a snapshot equals what
// XINFO and XPENDING say, for two groups in different states.
func TestHealthSnapshotMatchesRedis(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	rdb := srv.Client
	stream := srv.Key("{healthy}")
	ids := publishN(t, rdb, stream, 0, 20)
	for _, g := range []string{"busy", "idle"} {
		if err := rdb.XGroupCreate(ctx, stream, g, "0").Err(); err != nil {
			t.Fatal(err)
		}
	}
	read := func(group, consumer string, n int64) {
		if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: consumer, Streams: []string{stream, ">"}, Count: n}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	read("busy", "a", 5)
	read("busy", "b", 3)
	if err := rdb.XAck(ctx, stream, "busy", ids[0], ids[6]).Err(); err != nil {
		t.Fatal(err)
	}
	q, err := deadletter.New(rdb, stream)
	if err != nil {
		t.Fatal(err)
	}
	if moved, err := q.Move(ctx, deadletter.MoveRequest{ID: ids[1], Fields: map[string]string{"n": "1"}, Group: "busy", Consumer: "a"}); err != nil || !moved {
		t.Fatalf("Move: %t %v", moved, err)
	}

	time.Sleep(5 * time.Millisecond) // a measurable idle time
	h, err := health.Snapshot(ctx, rdb, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := rdb.XInfoStream(ctx, stream).Result()
	if h.Stream != stream || h.Length != info.Length || h.LastID != info.LastGeneratedID || h.Length != 20 {
		t.Errorf("stream: %+v, XINFO STREAM %+v", h, info)
	}
	if h.DeadLetter.Key != q.Key() || h.DeadLetter.Length != 1 {
		t.Errorf("dead letter %+v, want %s with 1", h.DeadLetter, q.Key())
	}
	groups, _ := rdb.XInfoGroups(ctx, stream).Result()
	if len(h.Groups) != len(groups) {
		t.Fatalf("%d groups, XINFO GROUPS %d", len(h.Groups), len(groups))
	}
	for _, want := range groups {
		g, ok := h.Group(want.Name)
		if !ok {
			t.Fatalf("group %s missing", want.Name)
		}
		if g.Pending != want.Pending || g.ConsumerCount != want.Consumers || g.LastDeliveredID != want.LastDeliveredID ||
			!g.LagKnown || g.Lag != want.Lag {
			t.Errorf("group %s: %+v, XINFO GROUPS %+v", want.Name, g, want)
		}
		consumers, _ := rdb.XInfoConsumers(ctx, stream, want.Name).Result()
		if len(g.Consumers) != len(consumers) {
			t.Fatalf("group %s: %d consumers, XINFO CONSUMERS %d", want.Name, len(g.Consumers), len(consumers))
		}
		for i, c := range consumers {
			got := g.Consumers[i]
			if got.Name != c.Name || got.Pending != c.Pending || got.Idle < c.Idle-time.Second || got.Idle > c.Idle+time.Second {
				t.Errorf("consumer %d: %+v, XINFO CONSUMERS %+v", i, got, c)
			}
		}
		pend, _ := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: want.Name, Start: "-", End: "+", Count: 1}).Result()
		if len(pend) == 0 {
			if g.OldestPendingID != "" || g.OldestPendingAge != 0 {
				t.Errorf("group %s: oldest pending %q %s, want none", want.Name, g.OldestPendingID, g.OldestPendingAge)
			}
			continue
		}
		id, _ := midstream.ParseID(pend[0].ID)
		age := time.Since(id.Time())
		if g.OldestPendingID != pend[0].ID || g.OldestPendingDeliveries != pend[0].RetryCount ||
			g.OldestPendingAge <= 0 || g.OldestPendingAge > age+time.Second || g.OldestPendingIdle <= 0 {
			t.Errorf("group %s: oldest pending %s age %s idle %s deliveries %d, XPENDING %+v (age %s)", want.Name,
				g.OldestPendingID, g.OldestPendingAge, g.OldestPendingIdle, g.OldestPendingDeliveries, pend[0], age)
		}
	}
	busy, _ := h.Group("busy")
	if busy.Pending != 5 || busy.Lag != 12 || busy.OldestPendingID != ids[2] || len(busy.Consumers) != 2 {
		t.Errorf("busy: %+v; want pending 5, lag 12, oldest %s, 2 consumers", busy, ids[2])
	}
	idle, _ := h.Group("idle")
	if idle.Pending != 0 || idle.Lag != 20 || idle.ConsumerCount != 0 {
		t.Errorf("idle: %+v; want pending 0, lag 20, no consumer", idle)
	}

	only, err := health.Snapshot(ctx, rdb, stream, health.WithGroups("idle"), health.WithoutConsumers())
	if err != nil || len(only.Groups) != 1 || only.Groups[0].Name != "idle" || only.Groups[0].Consumers != nil {
		t.Errorf("WithGroups(idle), WithoutConsumers: %+v, %v", only, err)
	}
	if _, err := health.Snapshot(ctx, rdb, srv.Key("missing")); !errors.Is(err, midstream.ErrNoStream) {
		t.Errorf("Snapshot of a missing stream: %v, want ErrNoStream", err)
	}
}
