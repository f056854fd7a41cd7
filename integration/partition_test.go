package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/internal/keys"
	"github.com/midstream-go/midstream/producer"
)

type partOrder struct {
	Customer string `redis:"customer"`
	Seq      int    `redis:"seq"`
	Fail     bool   `redis:"fail"`
}

// TestPartitionsEndToEnd publishes keyed and unkeyed entries to a stream of
// four partitions and consumes them with two consumers of one group that
// split the partitions between them, each at concurrency 1: every entry is
// handled exactly once, each key's entries in one partition, in the order
// they were published.
func TestPartitionsEndToEnd(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	stream := srv.Key("orders")
	layout := midstream.Partitions{Count: 4}

	p, err := producer.New[partOrder](srv.Client, stream, producer.WithPartitions(layout),
		producer.WithPartitionKeyFunc(func(o partOrder) string { return o.Customer }))
	if err != nil {
		t.Fatal(err)
	}
	parts := p.Partitions()
	if len(parts) != 4 {
		t.Fatalf("partitions = %q", parts)
	}
	for i, k := range parts {
		if k != midstream.DefaultPartitionKey(stream, i, 4) {
			t.Fatalf("partition %d = %q", i, k)
		}
	}

	type seen struct {
		part string
		seq  int
	}
	var mu sync.Mutex
	byCustomer := map[string][]seen{}
	calls := map[string]int{} // partition/ID → handler calls
	h := consumer.Typed(func(ctx context.Context, o partOrder, m *consumer.Message) error {
		mu.Lock()
		defer mu.Unlock()
		byCustomer[o.Customer] = append(byCustomer[o.Customer], seen{m.Stream, o.Seq})
		calls[m.Stream+"/"+m.ID]++
		return nil
	})
	var cs []*consumer.Consumer
	for i := range 2 {
		c, err := consumer.New(srv.Client, stream, "billing", h, consumer.WithPartitions(layout),
			consumer.WithName(fmt.Sprint("c", i)), consumer.WithConcurrency(1), consumer.WithAssignedPartitions(2*i, 2*i+1))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Partitions(); fmt.Sprint(got) != fmt.Sprint(parts[2*i:2*i+2]) {
			t.Fatalf("consumer partitions %q, producer %q", got, parts)
		}
		cs = append(cs, c)
		stop := runConsumer(t, c)
		defer func() {
			if err := stop(); err != nil {
				t.Error(err)
			}
		}()
	}

	const customers, perCustomer = 20, 25
	var wg sync.WaitGroup
	for c := range customers {
		wg.Add(1)
		go func() { // one goroutine per key: its publishes are ordered
			defer wg.Done()
			for s := range perCustomer {
				if _, err := p.Publish(ctx, partOrder{Customer: fmt.Sprint("cust-", c), Seq: s}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Unkeyed entries spread round-robin; a batch splits by partition.
	batch := make([]partOrder, 40)
	for i := range batch {
		batch[i] = partOrder{Seq: i}
	}
	ids, err := p.PublishBatch(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if id == "" {
			t.Fatalf("batch entry %d has no ID", i)
		}
	}
	total := customers*perCustomer + len(batch)
	waitFor(t, time.Minute, "every entry handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(calls) >= total
	})
	time.Sleep(200 * time.Millisecond) // time for a duplicate to show
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != total {
		t.Fatalf("%d distinct entries handled, want %d", len(calls), total)
	}
	for k, n := range calls {
		if n != 1 {
			t.Fatalf("entry %s handled %d times", k, n)
		}
	}
	used := map[string]int{}
	for cust, got := range byCustomer {
		if cust == "" {
			for _, s := range got {
				used[s.part]++
			}
			continue
		}
		want := parts[midstream.PartitionOf(cust, 4)]
		for i, s := range got {
			if s.part != want {
				t.Fatalf("%s: entry %d in %s, want %s", cust, s.seq, s.part, want)
			}
			if s.seq != i {
				t.Fatalf("%s: handled out of order: %v", cust, got)
			}
		}
	}
	for _, k := range parts {
		if used[k] != len(batch)/4 {
			t.Fatalf("unkeyed batch spread %v, want %d per partition", used, len(batch)/4)
		}
	}
	var handled int64
	for _, c := range cs {
		handled += c.Stats().Handled
	}
	if handled != int64(total) {
		t.Fatalf("stats: %d handled, want %d", handled, total)
	}
	// Each partition holds its share, in its own slot on a cluster.
	var sum int64
	for _, k := range parts {
		n, err := srv.Client.XLen(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		sum += n
	}
	if sum != int64(total) {
		t.Fatalf("partitions hold %d entries, want %d", sum, total)
	}
}

// TestPartitionsLayoutIsFixed: once a layout is stored, a producer or
// consumer with another count (or other names) is refused with
// ErrPartitionLayout, before it writes or reads anything.
func TestPartitionsLayoutIsFixed(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream := srv.Key("orders")
	p4, err := producer.New[partOrder](srv.Client, stream, producer.WithPartitions(midstream.Partitions{Count: 4}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p4.Publish(ctx, partOrder{Customer: "a"}); err != nil {
		t.Fatal(err)
	}
	stored, err := midstream.StoredPartitions(ctx, srv.Client, stream)
	if err != nil || fmt.Sprint(stored) != fmt.Sprint(p4.Partitions()) {
		t.Fatalf("stored %q (%v), want %q", stored, err, p4.Partitions())
	}
	p3, err := producer.New[partOrder](srv.Client, stream, producer.WithPartitions(midstream.Partitions{Count: 3}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p3.Publish(ctx, partOrder{Customer: "a"}); !errors.Is(err, midstream.ErrPartitionLayout) {
		t.Fatalf("publish with 3 of 4 partitions: %v", err)
	}
	if _, err := p3.PublishBatch(ctx, []partOrder{{}, {}}); !errors.Is(err, midstream.ErrPartitionLayout) {
		t.Fatalf("batch with 3 of 4 partitions: %v", err)
	}
	renamed, err := producer.New[partOrder](srv.Client, stream, producer.WithPartitions(midstream.Partitions{Count: 4,
		Key: func(s string, i int) string { return fmt.Sprintf("%s-%d", s, i) }}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := renamed.Publish(ctx, partOrder{}); !errors.Is(err, midstream.ErrPartitionLayout) {
		t.Fatalf("publish with other names: %v", err)
	}
	c, err := consumer.New(srv.Client, stream, "g", consumer.HandlerFunc(func(context.Context, *consumer.Message) error { return nil }),
		consumer.WithPartitions(midstream.Partitions{Count: 5}))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.Run(runCtx); !errors.Is(err, midstream.ErrPartitionLayout) {
		t.Fatalf("run with 5 of 4 partitions: %v", err)
	}
	for i := range 5 {
		k := midstream.DefaultPartitionKey(stream, i, 5)
		if slices.Contains(p4.Partitions(), k) {
			continue
		}
		if n, _ := srv.Client.Exists(ctx, k).Result(); n != 0 {
			t.Fatalf("the refused consumer created partition %d", i)
		}
	}

	// Without partitions, the logical name is refused too.
	plain, err := producer.New[partOrder](srv.Client, stream)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Publish(ctx, partOrder{}); !errors.Is(err, midstream.ErrPartitionLayout) {
		t.Fatalf("plain publish to a partitioned stream: %v", err)
	}
	if _, err := plain.PublishBatch(ctx, []partOrder{{}}); !errors.Is(err, midstream.ErrPartitionLayout) || !errors.Is(err, producer.ErrNotSent) {
		t.Fatalf("plain batch to a partitioned stream: %v", err)
	}
	if _, err := plain.PublishIn(ctx, partOrder{}, time.Second); !errors.Is(err, midstream.ErrPartitionLayout) {
		t.Fatalf("plain delayed publish to a partitioned stream: %v", err)
	}
	pc, err := consumer.New(srv.Client, stream, "g", consumer.HandlerFunc(func(context.Context, *consumer.Message) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Run(runCtx); !errors.Is(err, midstream.ErrPartitionLayout) {
		t.Fatalf("plain consumer of a partitioned stream: %v", err)
	}
	if n, _ := srv.Client.Exists(ctx, stream).Result(); n != 0 {
		t.Fatal("the logical name was written")
	}

	// A partitioned producer refuses a name that holds a plain stream.
	old := srv.Key("old")
	if err := srv.Client.XAdd(ctx, &redis.XAddArgs{Stream: old, Values: []string{"k", "v"}}).Err(); err != nil {
		t.Fatal(err)
	}
	po, err := producer.New[partOrder](srv.Client, old, producer.WithPartitions(midstream.Partitions{Count: 2}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := po.Publish(ctx, partOrder{}); !errors.Is(err, midstream.ErrPartitionLayout) {
		t.Fatalf("partitioned publish over a plain stream: %v", err)
	}
	if n, _ := srv.Client.Exists(ctx, midstream.PartitionLayoutKey(old)).Result(); n != 0 {
		t.Fatal("a layout was stored over a plain stream")
	}
}

// TestPartitionsReclaimAndDeadLetter: entries a crashed consumer left
// pending in every partition are reclaimed by a live consumer; entries
// that always fail go to their own partition's dead-letter stream, in the
// partition's slot, and redrive goes back to that partition for the group.
func TestPartitionsReclaimAndDeadLetter(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	stream := srv.Key("orders")
	layout := midstream.Partitions{Count: 3}
	p, err := producer.New[partOrder](srv.Client, stream, producer.WithPartitions(layout))
	if err != nil {
		t.Fatal(err)
	}
	parts := p.Partitions()
	if _, err := midstream.EnsurePartitions(ctx, srv.Client, stream, layout); err != nil {
		t.Fatal(err)
	}
	// A consumer that read every partition and crashed.
	for _, k := range parts {
		if err := srv.Client.XGroupCreateMkStream(ctx, k, "billing", "0").Err(); err != nil {
			t.Fatal(err)
		}
	}
	const n = 30
	for i := range n {
		if _, err := p.Publish(ctx, partOrder{Seq: i, Fail: i%10 == 0}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range parts {
		if err := srv.Client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "billing", Consumer: "crashed", Streams: []string{k, ">"}, Count: n}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	handled := map[string]int{}
	var fixed atomic.Bool // the failing entries succeed once fixed
	c, err := consumer.New(srv.Client, stream, "billing",
		consumer.Typed(func(ctx context.Context, o partOrder, m *consumer.Message) error {
			if o.Fail && !fixed.Load() {
				return errors.New("fails until fixed")
			}
			mu.Lock()
			handled[m.Stream+"/"+m.ID]++
			mu.Unlock()
			return nil
		}),
		consumer.WithPartitions(layout), consumer.WithMinIdle(100*time.Millisecond), consumer.WithClaimInterval(50*time.Millisecond),
		consumer.WithMaxDeliveries(2), consumer.WithRetryDelay(20*time.Millisecond, 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	stop := runConsumer(t, c)
	waitFor(t, time.Minute, "reclaimed entries handled and failures dead-lettered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == n-3 && c.Stats().DeadLettered == 3
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for k, v := range handled {
		if v != 1 {
			t.Fatalf("%s handled %d times", k, v)
		}
	}
	var dead int64
	for _, k := range parts {
		q, err := deadletter.New(srv.Client, k)
		if err != nil {
			t.Fatal(err)
		}
		if !keys.SameSlot(q.Key(), k) {
			t.Fatalf("dead-letter stream %q not in the slot of %q", q.Key(), k)
		}
		cnt, err := q.Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		dead += cnt
		pend, err := srv.Client.XPending(ctx, k, "billing").Result()
		if err != nil {
			t.Fatal(err)
		}
		if pend.Count != 0 {
			t.Fatalf("%s: %d entries still pending", k, pend.Count)
		}
		if cnt == 0 {
			continue
		}
		// Redrive to the group: handled this time.
		res, err := q.Redrive(ctx, deadletter.RedriveOptions{Group: "billing"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Redriven != int(cnt) {
			t.Fatalf("%s: redrove %d of %d", k, res.Redriven, cnt)
		}
	}
	if dead != 3 {
		t.Fatalf("%d dead letters over the partitions, want 3", dead)
	}
	// The redriven entries reach the group's handler, from their own
	// partition's redrive stream.
	fixed.Store(true)
	stop = runConsumer(t, c)
	waitFor(t, time.Minute, "redriven entries handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == n
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	redriven := 0
	for k, v := range handled {
		if v != 1 {
			t.Fatalf("%s handled %d times", k, v)
		}
		for _, part := range parts {
			if strings.HasPrefix(k, deadletter.RedriveKey(part, "billing")+"/") {
				redriven++
			}
		}
	}
	if redriven != 3 {
		t.Fatalf("%d entries handled from the partitions' redrive streams, want 3", redriven)
	}
}

// TestPartitionsDelayedAndBadInput: delayed entries go to a partition and
// are cancelled through the partitioned producer; bad options fail clearly.
func TestPartitionsDelayedAndBadInput(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream := srv.Key("orders")
	layout := midstream.Partitions{Count: 2}
	p, err := producer.New[partOrder](srv.Client, stream, producer.WithPartitions(layout))
	if err != nil {
		t.Fatal(err)
	}
	sid, err := p.PublishIn(ctx, partOrder{Seq: 1}, time.Hour, producer.PartitionKey("k"))
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(midstream.PartitionOf("k", 2)) + ":"; len(sid) < 3 || sid[:2] != want {
		t.Fatalf("schedule ID %q, want prefix %q", sid, want)
	}
	if ok, err := p.Cancel(ctx, sid); !ok || err != nil {
		t.Fatalf("cancel: %v %v", ok, err)
	}
	for _, bad := range []string{"", "x", "2:00000000000000000001", "-1:1", "01:00000000000000000001"} {
		if _, err := p.Cancel(ctx, bad); !errors.Is(err, midstream.ErrInvalidOption) {
			t.Fatalf("cancel %q: %v", bad, err)
		}
	}

	plain, err := producer.New[partOrder](srv.Client, srv.Key("plain"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Publish(ctx, partOrder{}, producer.PartitionKey("k")); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Fatalf("PartitionKey without partitions: %v", err)
	}
	if _, err := producer.New[partOrder](srv.Client, stream, producer.WithPartitionKeyFunc(func(partOrder) string { return "" })); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Fatalf("key func without partitions: %v", err)
	}
	if _, err := producer.New[partOrder](srv.Client, stream, producer.WithPartitions(layout), producer.WithPartitionKeyFunc(func(string) string { return "" })); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Fatalf("key func of another type: %v", err)
	}
	for _, l := range []midstream.Partitions{{}, {Count: midstream.MaxPartitions + 1}} {
		if _, err := producer.New[partOrder](srv.Client, stream, producer.WithPartitions(l)); !errors.Is(err, midstream.ErrInvalidOption) {
			t.Fatalf("producer with %d partitions: %v", l.Count, err)
		}
		if _, err := consumer.New(srv.Client, stream, "g", consumer.HandlerFunc(func(context.Context, *consumer.Message) error { return nil }), consumer.WithPartitions(l)); !errors.Is(err, midstream.ErrInvalidOption) {
			t.Fatalf("consumer with %d partitions: %v", l.Count, err)
		}
	}
	for _, o := range [][]consumer.Option{
		{consumer.WithAssignedPartitions(0)},
		{consumer.WithPartitions(layout), consumer.WithAssignedPartitions()},
		{consumer.WithPartitions(layout), consumer.WithAssignedPartitions(2)},
		{consumer.WithPartitions(layout), consumer.WithAssignedPartitions(-1)},
		{consumer.WithPartitions(layout), consumer.WithAssignedPartitions(1, 1)},
	} {
		if _, err := consumer.New(srv.Client, stream, "g", consumer.HandlerFunc(func(context.Context, *consumer.Message) error { return nil }), o...); !errors.Is(err, midstream.ErrInvalidOption) {
			t.Fatalf("bad assignment: %v", err)
		}
	}
	q, err := deadletter.New(srv.Client, stream)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := consumer.New(srv.Client, stream, "g", consumer.HandlerFunc(func(context.Context, *consumer.Message) error { return nil }),
		consumer.WithPartitions(layout), consumer.WithDeadLetter(q)); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Fatalf("WithDeadLetter with partitions: %v", err)
	}
	// The delayed entry's mover is the partition's consumer.
	if _, err := p.PublishIn(ctx, partOrder{Seq: 2}, 0, producer.PartitionKey("k")); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	c, err := consumer.New(srv.Client, stream, "g", consumer.HandlerFunc(func(_ context.Context, m *consumer.Message) error {
		got <- m.Stream
		return nil
	}), consumer.WithPartitions(layout))
	if err != nil {
		t.Fatal(err)
	}
	stop := runConsumer(t, c)
	defer stop()
	select {
	case s := <-got:
		if s != p.Partitions()[midstream.PartitionOf("k", 2)] {
			t.Fatalf("delayed entry came from %s", s)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("delayed entry not delivered")
	}
}

// TestPartitionsClusterPoolSize: on a cluster, a partitioned consumer's Run
// refuses a client whose per-node pool cannot hold the blocked reads of the
// partitions on the busiest master (two each) and four more, with an error
// naming the size to set, before it reads; with that size it runs.
func TestPartitionsClusterPoolSize(t *testing.T) {
	srv := redistest.Start(t)
	if srv.Cluster == nil {
		t.Skip("needs the cluster backend (MIDSTREAM_REDIS_BACKEND=cluster)")
	}
	ctx := context.Background()
	stream := srv.Key("pool")
	layout := midstream.Partitions{Count: 6} // two per master
	h := consumer.HandlerFunc(func(context.Context, *consumer.Message) error { return nil })
	small := srv.NewUniversalClient(func(o *redis.UniversalOptions) { o.PoolSize = 7 })
	c, err := consumer.New(small, stream, "g", h, consumer.WithPartitions(layout))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err = c.Run(runCtx)
	if !errors.Is(err, midstream.ErrInvalidOption) || !strings.Contains(err.Error(), "at least 8") {
		t.Fatalf("Run with 2 partitions per master and a pool of 7 per node = %v; want ErrInvalidOption asking for 8", err)
	}
	enough := srv.NewUniversalClient(func(o *redis.UniversalOptions) { o.PoolSize = 8 })
	c, err = consumer.New(enough, stream, "g", h, consumer.WithPartitions(layout))
	if err != nil {
		t.Fatal(err)
	}
	stop := runConsumer(t, c)
	p := newProducer[map[string]string](t, srv.Client, stream, producer.WithPartitions(layout))
	if _, err := p.Publish(ctx, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the entry handled", func() bool { return c.Stats().Acked == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
