package integration

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/integration/redistest"
)

// ledger records every handler call by entry ID.
type ledger struct {
	mu    sync.Mutex
	calls map[string]int
	total atomic.Int64
}

func newLedger() *ledger { return &ledger{calls: map[string]int{}} }

func (l *ledger) record(id string) {
	l.mu.Lock()
	l.calls[id]++
	l.mu.Unlock()
	l.total.Add(1)
}

func (l *ledger) count(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls[id]
}

func (l *ledger) distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.calls)
}

// waitFor polls cond until it holds, failing the test after limit. The
// limit only bounds a hung test; nothing asserts on elapsed time.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runConsumer starts c.Run in a goroutine and returns a stop function that
// cancels it and returns Run's error once it has returned.
func runConsumer(t *testing.T, c *consumer.Consumer) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(time.Minute):
				t.Fatalf("consumer %s did not stop", c.Name())
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func newConsumer(t *testing.T, rdb redis.UniversalClient, stream, group string, h consumer.Handler, opts ...consumer.Option) *consumer.Consumer {
	t.Helper()
	opts = append([]consumer.Option{consumer.WithBlock(100 * time.Millisecond)}, opts...)
	c, err := consumer.New(rdb, stream, group, h, opts...)
	if err != nil {
		t.Fatalf("consumer.New: %v", err)
	}
	return c
}

// publishN adds n entries {"n": i} with one pipeline per 500 and returns their IDs.
func publishN(t *testing.T, rdb redis.UniversalClient, stream string, from, n int) []string {
	t.Helper()
	ctx := context.Background()
	var ids []string
	for start := from; start < from+n; start += 500 {
		pipe := rdb.Pipeline()
		var cmds []*redis.StringCmd
		for i := start; i < min(start+500, from+n); i++ {
			cmds = append(cmds, pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"n", strconv.Itoa(i)}}))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatalf("publishing: %v", err)
		}
		for _, c := range cmds {
			ids = append(ids, c.Val())
		}
	}
	return ids
}

func pendingCount(t *testing.T, rdb redis.UniversalClient, stream, group string) int64 {
	t.Helper()
	p, err := rdb.XPending(context.Background(), stream, group).Result()
	if err != nil {
		t.Fatalf("XPENDING: %v", err)
	}
	return p.Count
}

// TestConsumerGroupHandlesEveryEntryOnce: with N consumers and no faults,
// every entry is handled and acknowledged exactly once, and nothing is
// pending at the end.
func TestConsumerGroupHandlesEveryEntryOnce(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	stream, group := srv.Key("orders"), "workers"
	const before, during, consumers = 3000, 3000, 4
	ids := publishN(t, srv.Client, stream, 0, before)

	l := newLedger()
	h := consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		if m.Deliveries != 1 || m.Group != group || m.Stream != stream {
			t.Errorf("message %s: deliveries %d group %q stream %q", m.ID, m.Deliveries, m.Group, m.Stream)
		}
		l.record(m.ID)
		return nil
	})
	var cs []*consumer.Consumer
	var stops []func() error
	for range consumers {
		c := newConsumer(t, srv.Client, stream, group, h, consumer.WithStart(consumer.StartBeginning), consumer.WithConcurrency(4))
		cs = append(cs, c)
		stops = append(stops, runConsumer(t, c))
	}
	ids = append(ids, publishN(t, srv.Client, stream, before, during)...)
	waitFor(t, time.Minute, "every entry handled", func() bool { return l.total.Load() >= int64(len(ids)) })
	for _, stop := range stops {
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
	if l.total.Load() != int64(len(ids)) || l.distinct() != len(ids) {
		t.Fatalf("%d handler calls for %d distinct entries, want %d each", l.total.Load(), l.distinct(), len(ids))
	}
	for _, id := range ids {
		if n := l.count(id); n != 1 {
			t.Fatalf("entry %s handled %d times", id, n)
		}
	}
	if n := pendingCount(t, srv.Client, stream, group); n != 0 {
		t.Fatalf("%d entries still pending", n)
	}
	var acked, handled int64
	busy := 0
	for _, c := range cs {
		s := c.Stats()
		acked += s.Acked
		handled += s.Handled
		if s.Handled > 0 {
			busy++
		}
	}
	if acked != int64(len(ids)) || handled != int64(len(ids)) {
		t.Fatalf("stats: acked %d handled %d, want %d", acked, handled, len(ids))
	}
	t.Logf("%d entries over %d consumers (%d got work)", len(ids), consumers, busy)
}

// TestConsumerErrorsLeaveEntriesPending: a failing handler leaves its entry
// pending with the server's delivery count; a panic is an error too; a
// consumer with the same name handles its own pending entries first.
func TestConsumerErrorsLeaveEntriesPending(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	stream, group := srv.Key("jobs"), "g"
	ids := publishN(t, srv.Client, stream, 0, 100)
	failing := map[string]bool{ids[3]: true, ids[50]: true, ids[99]: true}
	panicking := ids[10]

	l := newLedger()
	c := newConsumer(t, srv.Client, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		l.record(m.ID)
		if m.ID == panicking {
			panic("boom")
		}
		if failing[m.ID] {
			return errors.New("transient failure")
		}
		return nil
	}), consumer.WithStart(consumer.StartBeginning), consumer.WithName("worker-1"))
	stop := runConsumer(t, c)
	waitFor(t, time.Minute, "all entries handled", func() bool { return l.total.Load() == 100 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.Failed != 4 || s.Handled != 96 || s.Acked != 96 {
		t.Fatalf("stats %+v, want 4 failed, 96 handled and acked", s)
	}
	pend, err := srv.Client.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: group, Start: "-", End: "+", Count: 100}).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(pend) != 4 {
		t.Fatalf("%d pending entries, want 4: %+v", len(pend), pend)
	}
	for _, p := range pend {
		if !failing[p.ID] && p.ID != panicking {
			t.Errorf("entry %s pending but its handler succeeded", p.ID)
		}
		// Failed entries wait for their retry under RetryOwner, with the
		// delivery count unchanged.
		if p.RetryCount != 1 || p.Consumer != consumer.RetryOwner {
			t.Errorf("entry %s: delivery count %d consumer %q, want 1 and %s", p.ID, p.RetryCount, p.Consumer, consumer.RetryOwner)
		}
	}

	// Once their backoff has passed, a consumer of the group claims them and
	// hands them to its handler with the server's delivery count (the claim
	// counts as a delivery: 2).
	var seen sync.Map
	c2 := newConsumer(t, srv.Client, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		seen.Store(m.ID, m.Deliveries)
		return nil
	}), consumer.WithName("worker-1"), consumer.WithMinIdle(50*time.Millisecond), consumer.WithClaimInterval(20*time.Millisecond))
	stop2 := runConsumer(t, c2)
	waitFor(t, time.Minute, "pending entries handled again", func() bool { return c2.Stats().Acked == 4 })
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	for _, p := range pend {
		d, ok := seen.Load(p.ID)
		if !ok {
			t.Errorf("pending entry %s not redelivered", p.ID)
		} else if d.(int64) != p.RetryCount+1 {
			t.Errorf("entry %s: handler saw %d deliveries, want %d", p.ID, d, p.RetryCount+1)
		}
	}
	if n := pendingCount(t, srv.Client, stream, group); n != 0 {
		t.Fatalf("%d still pending", n)
	}
}

// TestConsumerShutdownDrainsInFlight: cancelling Run lets handlers in
// flight finish and acknowledges them before Run returns.
func TestConsumerShutdownDrainsInFlight(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	stream, group := srv.Key("slow"), "g"
	publishN(t, srv.Client, stream, 0, 20)
	var started, finished atomic.Int64
	release := make(chan struct{})
	c := newConsumer(t, srv.Client, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		started.Add(1)
		<-release
		if ctx.Err() != nil {
			t.Errorf("handler ctx cancelled during a graceful shutdown: %v", ctx.Err())
		}
		finished.Add(1)
		return nil
	}), consumer.WithStart(consumer.StartBeginning), consumer.WithConcurrency(5), consumer.WithMaxInFlight(20))
	stop := runConsumer(t, c)
	waitFor(t, time.Minute, "5 handlers in flight", func() bool { return started.Load() == 5 })
	errc := make(chan error, 1)
	go func() { errc <- stop() }()
	select {
	case err := <-errc:
		t.Fatalf("Run returned (%v) with handlers in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// Everything read was handled and acknowledged; nothing else is pending.
	s := c.Stats()
	if s.Handled != finished.Load() || s.Acked != s.Handled || s.Handled < 5 {
		t.Fatalf("stats %+v, %d finished", s, finished.Load())
	}
	if n := pendingCount(t, srv.Client, stream, group); n != 0 {
		t.Fatalf("%d entries pending after a graceful shutdown", n)
	}
}

// TestConsumerShutdownAbandonsStuckHandler: a handler that ignores its ctx
// past the shutdown timeout is abandoned and its entry stays pending.
func TestConsumerShutdownAbandonsStuckHandler(t *testing.T) {
	srv := redistest.Start(t)
	stream, group := srv.Key("stuck"), "g"
	ids := publishN(t, srv.Client, stream, 0, 1)
	var inHandler atomic.Bool
	release := make(chan struct{})
	defer close(release)
	var ctxErr atomic.Value
	c := newConsumer(t, srv.Client, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		inHandler.Store(true)
		go func() { <-ctx.Done(); ctxErr.Store(ctx.Err()) }()
		<-release // ignores ctx
		return nil
	}), consumer.WithStart(consumer.StartBeginning), consumer.WithShutdownTimeout(100*time.Millisecond))
	stop := runConsumer(t, c)
	waitFor(t, time.Minute, "handler started", inHandler.Load)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if ctxErr.Load() == nil {
		t.Fatal("the stuck handler's ctx was not cancelled at the shutdown timeout")
	}
	p, err := srv.Client.XPendingExt(context.Background(), &redis.XPendingExtArgs{Stream: stream, Group: group, Start: "-", End: "+", Count: 10}).Result()
	if err != nil || len(p) != 1 || p[0].ID != ids[0] {
		t.Fatalf("pending after abandoning: %+v %v, want %s", p, err, ids[0])
	}
}

// TestConsumerSurvivesRedisRestart: Redis is killed and restarted (AOF)
// while entries are produced and consumed; every entry that was added is
// handled and nothing stays pending.
func TestConsumerSurvivesRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	if srv.Backend == "url" {
		t.Skip("needs a server the harness can restart")
	}
	stream, group := srv.Key("restart"), "g"
	rdb := srv.NewClient(func(o *redis.Options) { o.MaxRetries = 2; o.DialTimeout = 200 * time.Millisecond })
	l := newLedger()
	h := consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		l.record(m.ID)
		return nil
	})
	var stops []func() error
	for range 2 {
		stops = append(stops, runConsumer(t, newConsumer(t, rdb, stream, group, h, consumer.WithStart(consumer.StartBeginning))))
	}

	// Produce one entry at a time until told to stop, retrying each until
	// Redis confirms it; the producer's client does not retry on its own.
	prod := srv.NewClient(func(o *redis.Options) { o.MaxRetries = -1; o.DialTimeout = 200 * time.Millisecond })
	var added []string
	var mu sync.Mutex
	var refused atomic.Int64
	stopProducing := make(chan struct{})
	done := make(chan struct{})
	addedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(added) }
	go func() {
		defer close(done)
		ctx := context.Background()
		for i := 0; ; i++ {
			for {
				select {
				case <-stopProducing:
					return
				default:
				}
				id, err := prod.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"n", strconv.Itoa(i)}}).Result()
				if err == nil {
					mu.Lock()
					added = append(added, id)
					mu.Unlock()
					break
				}
				refused.Add(1)
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	waitFor(t, time.Minute, "some entries handled", func() bool { return l.total.Load() > 1000 })
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	// The server stays down until the producer has seen it refuse an entry.
	waitFor(t, time.Minute, "the producer to see the outage", func() bool { return refused.Load() > 0 })
	time.Sleep(100 * time.Millisecond) // and consumers too
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	afterRestart := addedCount()
	waitFor(t, time.Minute, "more entries added after the restart", func() bool { return addedCount() > afterRestart+1000 })
	close(stopProducing)
	<-done
	waitFor(t, 2*time.Minute, "every added entry handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range added {
			if l.count(id) == 0 {
				return false
			}
		}
		return true
	})
	waitFor(t, time.Minute, "nothing pending", func() bool { return pendingCount(t, rdb, stream, group) == 0 })
	for _, stop := range stops {
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	if refused.Load() == 0 {
		t.Fatal("the producer never saw the outage: the restart happened after it finished")
	}
	dups := l.total.Load() - int64(len(added))
	t.Logf("added %d entries across a Redis restart (%d adds refused during the outage): all handled, %d handled twice, 0 lost", len(added), refused.Load(), dups)
}

// TestConsumerRecoversFromNoGroup: deleting the group, or the whole stream,
// under a running consumer does not stop it.
func TestConsumerRecoversFromNoGroup(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	stream, group := srv.Key("nogroup"), "g"
	l := newLedger()
	c := newConsumer(t, srv.Client, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		l.record(m.Field("n"))
		return nil
	}))
	stop := runConsumer(t, c)
	waitFor(t, time.Minute, "group created", func() bool {
		g, err := srv.Client.XInfoGroups(ctx, stream).Result()
		return err == nil && len(g) == 1
	})
	publishN(t, srv.Client, stream, 0, 10)
	waitFor(t, time.Minute, "first entries", func() bool { return l.distinct() == 10 })

	if err := srv.Client.XGroupDestroy(ctx, stream, group).Err(); err != nil {
		t.Fatal(err)
	}
	publishN(t, srv.Client, stream, 10, 10)
	waitFor(t, time.Minute, "entries added after the group was destroyed", func() bool { return l.distinct() == 20 })

	if err := srv.Client.Del(ctx, stream).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "group recreated on a new stream", func() bool {
		g, err := srv.Client.XInfoGroups(ctx, stream).Result()
		return err == nil && len(g) == 1
	})
	publishN(t, srv.Client, stream, 20, 10)
	waitFor(t, time.Minute, "entries of the new stream", func() bool { return l.distinct() == 30 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if n := l.count(strconv.Itoa(i)); n != 1 {
			t.Errorf("entry n=%d handled %d times", i, n)
		}
	}
}

// TestConsumerDeletedWhilePending: entries deleted while pending are
// acknowledged and counted, not handed to the handler, and do not stop the
// consumer.
func TestConsumerDeletedWhilePending(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream, group := srv.Key("deleted"), "g"
	ids := publishN(t, srv.Client, stream, 0, 10)
	if err := srv.Client.XGroupCreate(ctx, stream, group, "0").Err(); err != nil {
		t.Fatal(err)
	}
	// "worker" reads all ten and dies without acknowledging.
	if err := srv.Client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "worker", Streams: []string{stream, ">"}, Count: 10, Block: -1}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Client.XDel(ctx, stream, ids[2], ids[7]).Err(); err != nil {
		t.Fatal(err)
	}
	l := newLedger()
	c := newConsumer(t, srv.Client, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		l.record(m.ID)
		return nil
	}), consumer.WithName("worker"))
	stop := runConsumer(t, c)
	waitFor(t, time.Minute, "pending entries processed", func() bool { return c.Stats().Acked == 10 })
	// (Stats.Acked counts the two deleted entries, acknowledged by the
	// claim that found them gone.)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.Deleted != 2 || s.Handled != 8 {
		t.Fatalf("stats %+v, want 2 deleted and 8 handled", s)
	}
	if l.count(ids[2]) != 0 || l.count(ids[7]) != 0 {
		t.Fatal("a deleted entry reached the handler")
	}
	if n := pendingCount(t, srv.Client, stream, group); n != 0 {
		t.Fatalf("%d pending", n)
	}
}

// TestConsumerHandlerTimeout: the handler's ctx ends at the per-message
// timeout; the entry stays pending.
func TestConsumerHandlerTimeout(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	stream, group := srv.Key("timeout"), "g"
	publishN(t, srv.Client, stream, 0, 3)
	c := newConsumer(t, srv.Client, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		<-ctx.Done()
		return ctx.Err()
	}), consumer.WithStart(consumer.StartBeginning), consumer.WithHandlerTimeout(50*time.Millisecond))
	stop := runConsumer(t, c)
	waitFor(t, time.Minute, "three timeouts", func() bool { return c.Stats().Failed == 3 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := pendingCount(t, srv.Client, stream, group); n != 3 {
		t.Fatalf("%d pending, want 3", n)
	}
}

// TestConsumerConfigError: Run returns when the key is not a stream.
func TestConsumerConfigError(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	key := srv.Key("not-a-stream")
	if err := srv.Client.Set(context.Background(), key, "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	c := newConsumer(t, srv.Client, key, "g", consumer.HandlerFunc(func(context.Context, *consumer.Message) error { return nil }))
	err := c.Run(context.Background())
	if !errors.Is(err, midstream.ErrMisconfigured) || !redis.HasErrorPrefix(err, "WRONGTYPE") {
		t.Fatalf("Run on a string key: %v, want a WRONGTYPE error wrapped in ErrMisconfigured", err)
	}
}

// TestConsumerTypedDecodeFailure: a typed handler never sees an entry that
// does not decode; it stays pending with the decode error logged.
func TestConsumerTypedDecodeFailure(t *testing.T) {
	srv := redistest.Start(t)
	stream, group := srv.Key("typed"), "g"
	ctx := context.Background()
	for _, n := range []string{"1", "two", "3"} {
		if err := srv.Client.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"n", n}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	type job struct {
		N int `redis:"n"`
	}
	var sum atomic.Int64
	c := newConsumer(t, srv.Client, stream, group, consumer.Typed(func(ctx context.Context, j job, m *consumer.Message) error {
		sum.Add(int64(j.N))
		return nil
	}), consumer.WithStart(consumer.StartBeginning))
	stop := runConsumer(t, c)
	waitFor(t, time.Minute, "three entries processed", func() bool { s := c.Stats(); return s.Handled+s.Failed == 3 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if sum.Load() != 4 || c.Stats().Failed != 1 {
		t.Fatalf("sum %d stats %+v, want 4 and one failure", sum.Load(), c.Stats())
	}
}

// TestConsumerRecoversLostReply: Redis executes an XREADGROUP whose reply
// never reaches the consumer (the connection dies on the way back), so an
// entry is pending for it unseen. After the failed read the consumer reads
// its own pending entries after the last one it saw, and handles it.
func TestConsumerRecoversLostReply(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream, group := srv.Key("lost"), "g"
	proxy := srv.StartProxy(t)
	// No client retries, so the failed read is seen: a retried XREADGROUP >
	// would return later entries and the lost one would wait for reclaim.
	viaProxy := redis.NewClient(&redis.Options{Addr: proxy.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = viaProxy.Close() })

	l := newLedger()
	c := newConsumer(t, viaProxy, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		l.record(m.Field("n"))
		return nil
	}), consumer.WithBlock(time.Second))
	stop := runConsumer(t, c)
	waitFor(t, time.Minute, "group created", func() bool {
		g, err := srv.Client.XInfoGroups(ctx, stream).Result()
		return err == nil && len(g) == 1
	})
	publishN(t, srv.Client, stream, 0, 1)
	waitFor(t, time.Minute, "first entry handled and acked", func() bool { return c.Stats().Acked == 1 })
	time.Sleep(100 * time.Millisecond) // the consumer is blocked in XREADGROUP >

	proxy.LoseNextReply()
	publishN(t, srv.Client, stream, 1, 1) // delivered by the blocked read; its reply is lost
	waitFor(t, time.Minute, "the lost entry handled", func() bool { return l.count("1") == 1 })
	publishN(t, srv.Client, stream, 2, 1)
	waitFor(t, time.Minute, "a later entry handled", func() bool { return l.count("2") == 1 })
	waitFor(t, time.Minute, "nothing pending", func() bool { return pendingCount(t, srv.Client, stream, group) == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"0", "1", "2"} {
		if l.count(n) != 1 {
			t.Errorf("entry n=%s handled %d times, want 1", n, l.count(n))
		}
	}
}

// TestConsumerLeastPrivilegeUser: a user allowed to read and acknowledge but
// not to create groups can run a consumer on an existing group.
func TestConsumerLeastPrivilegeUser(t *testing.T) {
	srv := redistest.Start(t)
	if srv.Backend == "url" {
		t.Skip("creates an ACL user: needs a server of its own")
	}
	ctx := context.Background()
	stream, group := srv.Key("acl"), "g"
	if err := srv.Client.Do(ctx, "ACL", "SETUSER", "worker", "on", ">secret", "~*", "+@all", "-xgroup").Err(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Client.XGroupCreateMkStream(ctx, stream, group, "0").Err(); err != nil {
		t.Fatal(err)
	}
	worker := srv.NewClient(func(o *redis.Options) { o.Username, o.Password = "worker", "secret" })
	if err := worker.XGroupCreate(ctx, stream, "other", "0").Err(); err == nil || !redis.HasErrorPrefix(err, "NOPERM") {
		t.Fatalf("the user may create groups (%v): the test proves nothing", err)
	}
	c := newConsumer(t, worker, stream, group, consumer.HandlerFunc(func(context.Context, *consumer.Message) error { return nil }))
	stop := runConsumer(t, c)
	publishN(t, srv.Client, stream, 0, 5)
	waitFor(t, time.Minute, "entries handled by the least-privilege consumer", func() bool { return c.Stats().Acked == 5 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestLeaseCoversQueuedEntries: entries read by a busy consumer and waiting
// for a free worker longer than the minimum idle time keep their lease, so
// another consumer's reclaim loop does not take them: each is handled once.
func TestLeaseCoversQueuedEntries(t *testing.T) {
	srv := redistest.Start(t)
	stream, group := srv.Key("queued"), "g"
	publishN(t, srv.Client, stream, 0, 12)
	l := newLedger()
	slow := newConsumer(t, srv.Client, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		l.record(m.ID)
		time.Sleep(100 * time.Millisecond)
		return nil
	}), consumer.WithStart(consumer.StartBeginning), consumer.WithConcurrency(1), consumer.WithMinIdle(300*time.Millisecond),
		consumer.WithClaimInterval(time.Hour))
	stopSlow := runConsumer(t, slow)
	waitFor(t, time.Minute, "the slow consumer holds every entry", func() bool {
		p, err := srv.Client.XPending(context.Background(), stream, group).Result()
		return err == nil && p.Count == 12
	})
	thief := newConsumer(t, srv.Client, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		l.record(m.ID)
		return nil
	}), consumer.WithMinIdle(300*time.Millisecond), consumer.WithClaimInterval(20*time.Millisecond))
	stopThief := runConsumer(t, thief)
	waitFor(t, time.Minute, "every entry handled", func() bool { return slow.Stats().Acked+thief.Stats().Acked == 12 })
	for _, stop := range []func() error{stopThief, stopSlow} {
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	if got := thief.Stats().Reclaimed; got != 0 {
		t.Fatalf("the other consumer reclaimed %d entries that were in flight (queued) on a live consumer", got)
	}
	if l.total.Load() != 12 || l.distinct() != 12 {
		t.Fatalf("%d handler calls for %d entries, want 12 once each", l.total.Load(), l.distinct())
	}
}
