package integration

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/integration/redistest"
)

// failDLQ fails (transiently) every script call touching the dead-letter key.
type failDLQ struct {
	key   string
	on    atomic.Bool
	fails atomic.Int64
}

func (h *failDLQ) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *failDLQ) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *failDLQ) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.on.Load() && (cmd.Name() == "evalsha" || cmd.Name() == "eval") {
			for _, a := range cmd.Args() {
				if s, ok := a.(string); ok && s == h.key {
					h.fails.Add(1)
					err := errors.New("test: simulated i/o timeout")
					cmd.SetErr(err)
					return err
				}
			}
		}
		return next(ctx, cmd)
	}
}

// TestFailingMoveDoesNotHoldUpAcks: while the move of one permanently
// failing entry to the dead-letter stream keeps failing, the other entries
// are still acknowledged as they are handled (an earlier acker retried the
// move and the acknowledgements behind one backoff: 2,000 entries took 56 s
// instead of 1). The entry whose move fails stays pending.
func TestFailingMoveDoesNotHoldUpAcks(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream, group := srv.Key("{fm}"), "g"
	createGroup(t, srv.Client, stream, group)
	hook := &failDLQ{key: deadletter.Key(stream)}
	hook.on.Store(true)
	rdb := srv.NewClient()
	rdb.AddHook(hook)
	c := newConsumer(t, rdb, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		if m.Field("n") == "bad" {
			return consumer.Permanent(errors.New("bad"))
		}
		return nil
	}), consumer.WithoutConsumerCleanup())
	stop := runConsumer(t, c)
	bad, err := srv.Client.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"n", "bad"}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a failed move", func() bool { return hook.fails.Load() > 0 })
	const n = 2000
	publishN(t, srv.Client, stream, 0, n)
	// A liveness bound, not a speed target: acks stalled behind the
	// failing move took about a minute.
	waitFor(t, 20*time.Second, "the good entries acknowledged", func() bool { return c.Stats().Acked >= n })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if p := pendingOf(t, srv.Client, stream, group, c.Name()); len(p) != 1 || p[0].ID != bad {
		t.Errorf("pending %+v, want only %s", p, bad)
	}
	if dl := xlenOf(t, srv.Client, deadletter.Key(stream)); dl != 0 {
		t.Errorf("%d dead-letter entries while every move failed", dl)
	}
}

// TestAuditWithFailingExpiryIsNotAHotLoop: more of the consumer's own
// pending entries past the delivery limit than the in-flight bound, and the
// dead-letter move fails (transiently): an earlier audit reported "more" after
// every round and ran again at once (10,000 XPENDING calls in 3 s).
func TestAuditWithFailingExpiryIsNotAHotLoop(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream, group := srv.Key("{hot}"), "g"
	createGroup(t, srv.Client, stream, group)
	ids := publishN(t, srv.Client, stream, 0, 300)
	if err := srv.Client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "w", Streams: []string{stream, ">"}, Count: 300, Block: -1}).Err(); err != nil {
		t.Fatal(err)
	}
	args := []any{"XCLAIM", stream, group, "w", 0}
	for _, id := range ids {
		args = append(args, id)
	}
	args = append(args, "RETRYCOUNT", 5, "JUSTID")
	if err := srv.Client.Do(ctx, args...).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	hook := &failDLQ{key: deadletter.Key(stream)}
	hook.on.Store(true)
	rdb := srv.NewClient()
	rdb.AddHook(hook)
	c := newConsumer(t, rdb, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error { return nil }),
		consumer.WithName("w"), consumer.WithoutConsumerCleanup())
	stop := runConsumer(t, c)
	time.Sleep(500 * time.Millisecond)
	before := commandCalls(t, srv.Client, "xpending")
	f0 := hook.fails.Load()
	time.Sleep(3 * time.Second)
	calls := commandCalls(t, srv.Client, "xpending") - before
	fails := hook.fails.Load() - f0
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("in 3 s: %d XPENDING calls, %d failed move attempts", calls, fails)
	if calls > 20 {
		t.Errorf("hot loop: %d XPENDING calls in 3 s", calls)
	}
}

// TestFailingMoveLetsTheEntryGo: a dead-letter move that keeps failing with
// a transient error is tried a bounded number of times (with backoff), then
// the entry leaves the ledger, still pending for the consumer, and the audit
// takes it again later: it is neither held forever nor lost, and no copy
// reaches the dead-letter stream while every move fails.
func TestFailingMoveLetsTheEntryGo(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream, group := srv.Key("{fm2}"), "g"
	createGroup(t, srv.Client, stream, group)
	hook := &failDLQ{key: deadletter.Key(stream)}
	hook.on.Store(true)
	rdb := srv.NewClient()
	rdb.AddHook(hook)
	var calls atomic.Int64
	c := newConsumer(t, rdb, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		calls.Add(1)
		return consumer.Permanent(errors.New("bad"))
	}), consumer.WithoutConsumerCleanup(), consumer.WithMaxDeliveries(50))
	stop := runConsumer(t, c)
	id, err := srv.Client.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"n", "bad"}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	// Ten attempts with a backoff growing to 5 s take about 20 s; then the
	// audit finds the entry pending and not held, and delivers it again.
	waitFor(t, 2*time.Minute, "the entry let go and taken again", func() bool { return c.Stats().Reclaimed >= 1 && calls.Load() >= 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if p := pendingOf(t, srv.Client, stream, group, c.Name()); len(p) != 1 || p[0].ID != id {
		t.Errorf("pending %+v, want only %s", p, id)
	}
	if dl := xlenOf(t, srv.Client, deadletter.Key(stream)); dl != 0 {
		t.Errorf("%d dead-letter entries while every move failed", dl)
	}
}
