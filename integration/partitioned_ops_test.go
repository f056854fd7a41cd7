package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/health"
	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/internal/keys"
	"github.com/midstream-go/midstream/producer"
	"github.com/midstream-go/midstream/trim"
)

// partitionedState is a partitioned stream left in a known state by a
// partitioned producer and consumer (see newPartitionedState).
type partitionedState struct {
	stream, group string
	parts         []string
	dead          int      // entries dead-lettered, over all partitions
	stuck         []string // per partition, the entry the consumer "stuck" holds pending
	consumer      string   // the name of the consumer that handled everything
}

// newPartitionedState publishes 30 entries to a 3-partition stream with a
// partitioned producer, has a partitioned consumer of group "billing"
// handle them (dead-lettering those with n%7 == 0, each to its partition's
// dead-letter stream), then publishes 2 more entries per partition and has
// consumer "stuck" read (and hold pending) the first of them in each
// partition: per partition, 1 pending and 1 undelivered.
func newPartitionedState(t *testing.T, srv *redistest.Server) partitionedState {
	t.Helper()
	ctx := context.Background()
	s := partitionedState{stream: srv.Key("orders"), group: "billing", consumer: "handler"}
	layout := midstream.Partitions{Count: 3}
	p, err := producer.New[map[string]string](srv.Client, s.stream, producer.WithPartitions(layout))
	if err != nil {
		t.Fatal(err)
	}
	s.parts = p.Partitions()
	for i := range 30 {
		if _, err := p.Publish(ctx, map[string]string{"n": strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 {
			s.dead++
		}
	}
	var handled atomic.Int64
	h := consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		defer handled.Add(1)
		n, err := strconv.Atoi(m.Fields()["n"])
		if err != nil {
			return consumer.Permanent(err)
		}
		if n%7 == 0 {
			return consumer.Permanent(fmt.Errorf("entry %d refused", n))
		}
		return nil
	})
	c := newConsumer(t, srv.Client, s.stream, s.group, h, consumer.WithPartitions(layout),
		consumer.WithName(s.consumer), consumer.WithStart(consumer.StartBeginning))
	stop := runConsumer(t, c)
	for deadline := time.Now().Add(time.Minute); handled.Load() < 30; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the consumer handled %d of 30 entries", handled.Load())
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for i, k := range s.parts {
		publishN(t, srv.Client, k, 100+2*i, 2)
		got, err := srv.Client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: s.group, Consumer: "stuck",
			Streams: []string{k, ">"}, Count: 1}).Result()
		if err != nil || len(got) != 1 || len(got[0].Messages) != 1 {
			t.Fatalf("XREADGROUP %s: %v %v", k, got, err)
		}
		s.stuck = append(s.stuck, got[0].Messages[0].ID)
	}
	return s
}

// TestHealthPartitioned: SnapshotPartitioned reports each partition as
// Snapshot does, and their total; the gauges report each partition.
func TestHealthPartitioned(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	s := newPartitionedState(t, srv)

	if _, err := health.SnapshotPartitioned(ctx, srv.Client, srv.Key("plain")); !errors.Is(err, midstream.ErrNoStream) {
		t.Fatalf("not partitioned: %v", err)
	}
	publishN(t, srv.Client, srv.Key("plain"), 0, 1)
	if _, err := health.SnapshotPartitioned(ctx, srv.Client, srv.Key("plain")); !errors.Is(err, midstream.ErrNoStream) {
		t.Fatalf("a plain stream: %v", err)
	}

	p, err := health.SnapshotPartitioned(ctx, srv.Client, s.stream)
	if err != nil {
		t.Fatal(err)
	}
	if p.Stream != s.stream || len(p.Partitions) != len(s.parts) {
		t.Fatalf("snapshot of %q: %d partitions", p.Stream, len(p.Partitions))
	}
	var length, added, dead, pending, lag, read int64
	oldest := ""
	for i, h := range p.Partitions {
		k := s.parts[i]
		one, err := health.Snapshot(ctx, srv.Client, k)
		if err != nil {
			t.Fatal(err)
		}
		// The partition's own dead-letter stream, in its slot.
		if h.Stream != k || h.DeadLetter != one.DeadLetter || h.DeadLetter.Key != deadletter.Key(k) ||
			keys.Slot(h.DeadLetter.Key) != keys.Slot(k) || h.Length != one.Length || h.EntriesAdded != one.EntriesAdded ||
			h.LastID != one.LastID || len(h.Groups) != 1 {
			t.Fatalf("partition %d: %+v, Snapshot says %+v", i, h, one)
		}
		g, og := h.Groups[0], one.Groups[0]
		if g.Name != s.group || g.Pending != 1 || g.OldestPendingID != s.stuck[i] || !g.LagKnown || g.Lag != 1 ||
			g.Pending != og.Pending || g.Lag != og.Lag || g.EntriesRead != og.EntriesRead || g.ConsumerCount != 2 {
			t.Fatalf("partition %d group: %+v, Snapshot says %+v", i, g, og)
		}
		length += one.Length
		added += one.EntriesAdded
		dead += one.DeadLetter.Length
		pending += og.Pending
		lag += og.Lag
		read += og.EntriesRead
		if oldest == "" || compareID(t, og.OldestPendingID, oldest) < 0 {
			oldest = og.OldestPendingID
		}
	}
	tot := p.Total
	if tot.Stream != s.stream || tot.Length != length || tot.Length != 36 || tot.EntriesAdded != added ||
		tot.DeadLetter.Length != dead || dead != int64(s.dead) || tot.LastID != "" || tot.DeadLetter.Key != "" {
		t.Fatalf("total %+v: want length %d (36), added %d, dead letters %d (%d)", tot, length, added, dead, s.dead)
	}
	g, ok := p.Group(s.group)
	if !ok || len(tot.Groups) != 1 || g.Pending != pending || g.Pending != 3 || !g.LagKnown || g.Lag != lag ||
		!g.EntriesReadKnown || g.EntriesRead != read || g.OldestPendingID != oldest || g.ConsumerCount != 2 {
		t.Fatalf("total group %+v: want pending %d, lag %d, read %d, oldest %s", g, pending, lag, read, oldest)
	}
	if i := p.OldestPendingPartition(s.group); i < 0 || s.stuck[i] != oldest {
		t.Fatalf("oldest pending in partition %d, want the one holding %s", i, oldest)
	}
	byName := map[string]health.ConsumerHealth{}
	for _, c := range g.Consumers {
		byName[c.Name] = c
	}
	if len(byName) != 2 || byName["stuck"].Pending != 3 || byName[s.consumer].Pending != 0 {
		t.Fatalf("total consumers %+v", g.Consumers)
	}

	// A group on one partition only: no total lag.
	if err := srv.Client.XGroupCreate(ctx, s.parts[1], "audit", "0").Err(); err != nil {
		t.Fatal(err)
	}
	p, err = health.SnapshotPartitioned(ctx, srv.Client, s.stream, health.WithGroups("audit"), health.WithoutConsumers())
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := p.Group("audit"); !ok || len(p.Total.Groups) != 1 || g.LagKnown || g.EntriesReadKnown || g.Consumers != nil {
		t.Fatalf("a group on one partition: %+v", p.Total.Groups)
	}

	// Partitions not created yet are reported empty, with their dead letters.
	fresh := srv.Key("fresh")
	fparts, err := midstream.EnsurePartitions(ctx, srv.Client, fresh, midstream.Partitions{Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, srv.Client, deadletter.Key(fparts[1]), 0, 1)
	fp, err := health.SnapshotPartitioned(ctx, srv.Client, fresh)
	if err != nil || len(fp.Partitions) != 2 || fp.Partitions[1].Length != 0 || fp.Partitions[1].DeadLetter.Length != 1 ||
		fp.Partitions[1].DeadLetter.Key != deadletter.Key(fparts[1]) || fp.Total.Length != 0 || fp.Total.DeadLetter.Length != 1 ||
		len(fp.Total.Groups) != 0 {
		t.Fatalf("partitions not created yet: %+v %v", fp, err)
	}

	// The gauges: one point per partition, under the logical stream.
	mp, reader := otelMetrics(t)
	reg, err := health.RegisterPartitionedGauges(mp, srv.Client, s.stream, health.WithGroups(s.group))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()
	ms := otelCollect(t, reader)
	dest := attribute.String("messaging.destination.name", s.stream)
	for i, k := range s.parts {
		part := health.KeyPartition.Int(i)
		n, _ := srv.Client.XLen(ctx, k).Result()
		d, _ := srv.Client.XLen(ctx, deadletter.Key(k)).Result()
		for _, tc := range []struct {
			name  string
			attrs []attribute.KeyValue
			want  int64
		}{
			{"midstream.stream.length", []attribute.KeyValue{dest, part}, n},
			{"midstream.deadletter.depth", []attribute.KeyValue{dest, part}, d},
			{"midstream.group.pending", []attribute.KeyValue{dest, part, attribute.String("messaging.consumer.group.name", s.group)}, 1},
			{"midstream.group.lag", []attribute.KeyValue{dest, part, attribute.String("messaging.consumer.group.name", s.group)}, 1},
		} {
			if got, ok := otelInt(ms, tc.name, tc.attrs...); !ok || got != tc.want {
				t.Errorf("partition %d: %s = %d (reported %t), want %d", i, tc.name, got, ok, tc.want)
			}
		}
	}
	if g, ok := ms["midstream.stream.length"].(metricdata.Gauge[int64]); !ok || len(g.DataPoints) != len(s.parts) {
		t.Errorf("stream length points: %+v", ms["midstream.stream.length"])
	}
}

func compareID(t *testing.T, a, b string) int {
	t.Helper()
	x, err := midstream.ParseID(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := midstream.ParseID(b)
	if err != nil {
		t.Fatal(err)
	}
	return x.Compare(y)
}

// TestTrimPartitioned: each partition is trimmed against its own groups,
// never past what a group still needs there; Preview trims nothing; a
// Trimmer WithPartitioned trims every partition.
func TestTrimPartitioned(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	s := newPartitionedState(t, srv)
	// A second group, on partition 2 only, that has read nothing there.
	if err := srv.Client.XGroupCreate(ctx, s.parts[2], "audit", "0").Err(); err != nil {
		t.Fatal(err)
	}
	lens := func() []int64 {
		var out []int64
		for _, k := range s.parts {
			n, err := srv.Client.XLen(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, n)
		}
		return out
	}
	before := lens()
	// What each partition must keep: from its stuck entry on (billing),
	// everything in partition 2 (audit).
	need := make([]int64, len(s.parts))
	for i, k := range s.parts {
		kept, err := srv.Client.XRange(ctx, k, s.stuck[i], "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		need[i] = int64(len(kept))
	}
	need[2] = before[2]

	policy := trim.Policy{MaxLen: 1}
	preview, err := trim.PreviewPartitioned(ctx, srv.Client, s.stream, policy)
	if err != nil {
		t.Fatal(err)
	}
	if got := lens(); !slices.Equal(got, before) {
		t.Fatalf("preview changed the lengths: %v, were %v", got, before)
	}
	res, err := trim.TrimPartitioned(ctx, srv.Client, s.stream, policy)
	if err != nil {
		t.Fatal(err)
	}
	after := lens()
	for i, k := range s.parts {
		r := res[i]
		if r.Stream != k || preview[i].Stream != k || r.Trimmed != preview[i].Trimmed || r.Len != preview[i].Len {
			t.Errorf("partition %d: trim %+v, preview %+v", i, r, preview[i])
		}
		if r.Len != after[i] || after[i] != need[i] || r.Trimmed != before[i]-need[i] {
			t.Errorf("partition %d: trimmed %d to %d (now %d), want %d kept of %d", i, r.Trimmed, r.Len, after[i], need[i], before[i])
		}
		var groups []string
		for _, hb := range r.HeldBackBy {
			groups = append(groups, hb.Group)
		}
		want := []string{s.group}
		if i == 2 {
			want = []string{"audit"} // the oldest need first: audit needs everything
		}
		if len(groups) == 0 || groups[0] != want[0] {
			t.Errorf("partition %d held back by %v, want %v first", i, r.HeldBackBy, want)
		}
		if i != 2 && r.HeldBackBy[0].Until != s.stuck[i] {
			t.Errorf("partition %d held back until %s, want the pending %s", i, r.HeldBackBy[0].Until, s.stuck[i])
		}
		// The pending entry is still there for its consumer.
		if got, err := srv.Client.XRange(ctx, k, s.stuck[i], s.stuck[i]).Result(); err != nil || len(got) != 1 {
			t.Errorf("partition %d: pending entry %s: %v %v", i, s.stuck[i], got, err)
		}
	}

	// The groups finish their work; a Trimmer on the logical stream trims
	// every partition to the policy.
	for i, k := range s.parts {
		if err := srv.Client.XAck(ctx, k, s.group, s.stuck[i]).Err(); err != nil {
			t.Fatal(err)
		}
		if err := srv.Client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: s.group, Consumer: "stuck",
			Streams: []string{k, ">"}, NoAck: true}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Client.XGroupDestroy(ctx, s.parts[2], "audit").Err(); err != nil {
		t.Fatal(err)
	}
	reports := make(chan trim.Result, 100)
	tr, err := trim.New(srv.Client, policy, trim.WithPartitioned(s.stream), trim.WithInterval(10*time.Millisecond),
		trim.WithReport(func(r trim.Result, err error) {
			if err != nil {
				t.Errorf("trimmer: %v", err)
				return
			}
			select {
			case reports <- r:
			default:
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- tr.Run(runCtx) }()
	seen := map[string]trim.Result{}
	for len(seen) < len(s.parts) {
		select {
		case r := <-reports:
			if _, ok := seen[r.Stream]; !ok {
				seen[r.Stream] = r
			}
		case <-time.After(time.Minute):
			t.Fatalf("the trimmer reported %d partitions", len(seen))
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i, k := range s.parts {
		r, ok := seen[k]
		if !ok || r.Len != 1 || r.Trimmed != after[i]-1 || len(r.HeldBackBy) != 0 {
			t.Errorf("trimmer on partition %d: %+v (reported %t), was %d long", i, r, ok, after[i])
		}
	}
	if got := lens(); !slices.Equal(got, []int64{1, 1, 1}) {
		t.Fatalf("lengths after the trimmer: %v", got)
	}
}

// TestPartitionedOneBadPartition: a partition that cannot be read (here a
// key of the wrong type; on a cluster, its node down) leaves the others
// reported, and a layout that cannot be read keeps only its own stream from
// being trimmed.
func TestPartitionedOneBadPartition(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream := srv.Key("orders")
	p, err := producer.New[map[string]string](srv.Client, stream, producer.WithPartitions(midstream.Partitions{Count: 3}))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if _, err := p.Publish(ctx, map[string]string{"n": strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	bad := p.Partitions()[2]
	if err := srv.Client.Del(ctx, bad).Err(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Client.Set(ctx, bad, "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	h, err := health.SnapshotPartitioned(ctx, srv.Client, stream)
	if err == nil || len(h.Errors) != 3 || h.Errors[2] == nil || h.Errors[0] != nil || h.Errors[1] != nil {
		t.Fatalf("err %v, Errors %v", err, h.Errors)
	}
	if h.Partitions[0].Length != 10 || h.Partitions[1].Length != 10 || h.Total.Length != 20 {
		t.Fatalf("lengths %d %d, total %d; want 10 10 20", h.Partitions[0].Length, h.Partitions[1].Length, h.Total.Length)
	}

	// A Trimmer of a plain stream and of a partitioned one whose layout is
	// broken still trims the plain one, and reports the other.
	plain := srv.Key("plain")
	for range 50 {
		if err := srv.Client.XAdd(ctx, &redis.XAddArgs{Stream: plain, Values: []string{"k", "v"}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	broken := srv.Key("broken")
	if err := srv.Client.HSet(ctx, midstream.PartitionLayoutKey(broken), "count", "x").Err(); err != nil {
		t.Fatal(err)
	}
	var reported atomic.Int64
	tr, err := trim.New(srv.Client, trim.Policy{MaxLen: 10}, trim.WithStreams(plain), trim.WithPartitioned(broken),
		trim.WithInterval(20*time.Millisecond), trim.WithReport(func(r trim.Result, err error) {
			if errors.Is(err, midstream.ErrPartitionLayout) {
				reported.Add(1)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- tr.Run(runCtx) }()
	waitFor(t, 30*time.Second, "the plain stream trimmed and the broken layout reported", func() bool {
		return xlen(t, srv.Client, plain) <= 10 && reported.Load() > 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Trimmer.Run: %v", err)
	}
}
