package integration

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/integration/redistest"
)

// callTimes records when the handler was called, by entry ID.
type callTimes struct {
	mu sync.Mutex
	m  map[string][]time.Time
}

func (c *callTimes) add(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string][]time.Time{}
	}
	c.m[id] = append(c.m[id], time.Now())
	return len(c.m[id])
}

func (c *callTimes) get(id string) []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.m[id]...)
}

// TestGroupCreatedByRunStartsAtBeginning: a group that Run creates starts
// at the beginning of the stream, so entries published before the first Run
// are handled; an existing group keeps its position.
func TestGroupCreatedByRunStartsAtBeginning(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	stream := srv.Key("orders")
	ids := publishN(t, srv.Client, stream, 0, 2)

	l := newLedger()
	h := consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error { l.record(m.ID); return nil })
	stop := runConsumer(t, newConsumer(t, srv.Client, stream, "new-group", h))
	waitFor(t, 30*time.Second, "both entries handled", func() bool { return l.distinct() == 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if l.count(id) != 1 {
			t.Errorf("entry %s handled %d times, want 1", id, l.count(id))
		}
	}

	// An existing group is never moved: created at $ after the two
	// entries, it only gets the third.
	if err := srv.Client.XGroupCreate(ctx, stream, "existing", "$").Err(); err != nil {
		t.Fatal(err)
	}
	third := publishN(t, srv.Client, stream, 2, 1)[0]
	l2 := newLedger()
	h2 := consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error { l2.record(m.ID); return nil })
	stop = runConsumer(t, newConsumer(t, srv.Client, stream, "existing", h2))
	waitFor(t, 30*time.Second, "the third entry handled", func() bool { return l2.count(third) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if l2.distinct() != 1 {
		t.Errorf("existing group handled %d entries, want only the one added after it was created", l2.distinct())
	}

	// StartNew stays available.
	l3 := newLedger()
	h3 := consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error { l3.record(m.ID); return nil })
	c3 := newConsumer(t, srv.Client, stream, "tail", h3, consumer.WithStart(consumer.StartNew))
	stop = runConsumer(t, c3)
	waitFor(t, 30*time.Second, "the tail group created", func() bool {
		gs, err := srv.Client.XInfoGroups(ctx, stream).Result()
		if err != nil {
			return false
		}
		for _, g := range gs {
			if g.Name == "tail" {
				return true
			}
		}
		return false
	})
	fourth := publishN(t, srv.Client, stream, 3, 1)[0]
	waitFor(t, 30*time.Second, "the fourth entry handled", func() bool { return l3.count(fourth) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if l3.distinct() != 1 {
		t.Errorf("StartNew group handled %d entries, want 1", l3.distinct())
	}
}

// unsupported has no default codec: Typed cannot build a decoder for it.
type unsupported chan int

// TestTypedBrokenHandlerWrapped: a Typed handler that cannot work (no
// codec for its type), wrapped by the user in a middleware that New cannot
// look through, never has its function called, is not retried and not
// dead-lettered: Run stops at the first delivery with an error wrapping
// midstream.ErrMisconfigured and the construction error, and the entry
// stays pending for a fixed consumer.
func TestTypedBrokenHandlerWrapped(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	stream := srv.Key("orders")
	ids := publishN(t, srv.Client, stream, 0, 3)

	var calls, fnCalls sync.Map
	typed := consumer.Typed(func(ctx context.Context, v unsupported, m *consumer.Message) error {
		fnCalls.Store(m.ID, true)
		return nil
	})
	wrapped := consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		n, _ := calls.LoadOrStore(m.ID, new(int))
		*n.(*int)++
		return typed.Handle(ctx, m)
	})
	c := newConsumer(t, srv.Client, stream, "g", wrapped, consumer.WithConcurrency(1), consumer.WithMaxDeliveries(5),
		consumer.WithMinIdle(50*time.Millisecond), consumer.WithClaimInterval(20*time.Millisecond),
		consumer.WithRetryDelay(time.Millisecond, time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := c.Run(ctx)
	if !errors.Is(err, midstream.ErrMisconfigured) || !errors.Is(err, midstream.ErrUnsupportedType) {
		t.Fatalf("Run = %v, want an error wrapping ErrMisconfigured and ErrUnsupportedType", err)
	}
	total := 0
	calls.Range(func(_, v any) bool { total += *v.(*int); return true })
	if total != 1 {
		t.Errorf("%d handler calls, want 1 (no retry of a configuration error)", total)
	}
	fnCalls.Range(func(k, _ any) bool { t.Errorf("typed function called for %v", k); return true })
	if n := xlenOf(t, srv.Client, deadletter.Key(stream)); n != 0 {
		t.Errorf("%d entries dead-lettered, want none", n)
	}
	if s := c.Stats(); s.DeadLettered != 0 || s.Retried != 0 {
		t.Errorf("stats %+v: want nothing retried or dead-lettered", s)
	}
	// Nothing lost: a fixed handler gets every entry.
	l := newLedger()
	fixed := newConsumer(t, srv.Client, stream, "g", consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error { l.record(m.ID); return nil }),
		consumer.WithMinIdle(50*time.Millisecond), consumer.WithClaimInterval(20*time.Millisecond))
	stop := runConsumer(t, fixed)
	waitFor(t, 30*time.Second, "every entry handled by the fixed handler", func() bool { return l.distinct() == len(ids) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestRetryDelayApartFromMinIdle: a failing handler's entry comes back
// after its retry delay (200ms), not after the minimum idle time (30s); the
// handler is called exactly MaxDeliveries times, with the server's delivery
// counts 1, 2, 3, then the entry is dead-lettered as "handler failed 3
// times"; RetryAfter from the handler overrides the policy.
func TestRetryDelayApartFromMinIdle(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	stream := srv.Key("jobs")
	const delay, after = 200 * time.Millisecond, 500 * time.Millisecond
	ids := publishN(t, srv.Client, stream, 0, 3) // fails always; RetryAfter once; succeeds
	var times callTimes
	var seen deliveryLog
	h := consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		n := times.add(m.ID)
		seen.record(m)
		switch m.ID {
		case ids[0]:
			return errors.New("always fails")
		case ids[1]:
			if n == 1 {
				return consumer.RetryAfter(errors.New("busy"), after)
			}
		}
		return nil
	})
	c := newConsumer(t, srv.Client, stream, "g", h, consumer.WithMaxDeliveries(3),
		consumer.WithMinIdle(30*time.Second), consumer.WithRetryDelay(delay, delay))
	stop := runConsumer(t, c)
	waitFor(t, 30*time.Second, "one dead-lettered, two handled, nothing pending", func() bool {
		s := c.Stats()
		return s.DeadLettered == 1 && s.Handled == 2 && pendingCount(t, srv.Client, stream, "g") == 0
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	calls := times.get(ids[0])
	if len(calls) != 3 {
		t.Fatalf("failing entry: %d handler calls, want exactly 3", len(calls))
	}
	if d := seen.get(ids[0]); len(d) != 3 || d[0] != 1 || d[1] != 2 || d[2] != 3 {
		t.Errorf("failing entry: deliveries %v, want [1 2 3]", d)
	}
	for i := 1; i < len(calls); i++ {
		if gap := calls[i].Sub(calls[i-1]); gap < delay || gap > 2*delay {
			t.Errorf("retry %d came %v after the previous call, want within [%v, %v]", i, gap, delay, 2*delay)
		}
	}
	if c := times.get(ids[1]); len(c) != 2 {
		t.Errorf("RetryAfter entry: %d calls, want 2", len(c))
	} else if gap := c[1].Sub(c[0]); gap < after || gap > after+delay {
		t.Errorf("RetryAfter entry retried after %v, want within [%v, %v]", gap, after, after+delay)
	}
	dl := dlqAll(t, srv.Client, stream)
	if len(dl) != 1 || dl[0].OriginalID != ids[0] || dl[0].Deliveries != 3 || !strings.Contains(dl[0].Error, "handler failed 3 times") ||
		!strings.Contains(dl[0].Error, "always fails") {
		t.Errorf("DLQ %+v, want the failing entry with 3 deliveries, reason \"handler failed 3 times\"", dl)
	}
	// The retry schedule is left empty.
	if n := srv.Client.ZCard(context.Background(), consumer.RetryKey(stream, "g")).Val(); n != 0 {
		t.Errorf("retry schedule holds %d entries, want 0", n)
	}
}

// TestHandlerTimeoutError: a handler that outlives WithHandlerTimeout sees
// its ctx cancelled; the error recorded says it timed out and after how
// long.
func TestHandlerTimeoutError(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	stream := srv.Key("jobs")
	publishN(t, srv.Client, stream, 0, 1)
	var times callTimes
	h := consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		if times.add(m.ID) == 1 {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	})
	c := newConsumer(t, srv.Client, stream, "g", h, consumer.WithHandlerTimeout(100*time.Millisecond),
		consumer.WithMinIdle(30*time.Second), consumer.WithRetryDelay(50*time.Millisecond, 50*time.Millisecond),
		consumer.WithMaxDeliveries(1))
	stop := runConsumer(t, c)
	waitFor(t, 30*time.Second, "the timed-out entry dead-lettered", func() bool { return c.Stats().DeadLettered == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	dl := dlqAll(t, srv.Client, stream)
	if len(dl) != 1 || !strings.Contains(dl[0].Error, "timed out after 100ms") {
		t.Errorf("DLQ %+v, want a reason saying the handler timed out after 100ms", dl)
	}
	var te *consumer.TimeoutError
	err := error(&consumer.TimeoutError{After: time.Second, Err: context.DeadlineExceeded})
	if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("TimeoutError does not unwrap to context.DeadlineExceeded")
	}
}

// TestRetryScheduleOutlivesItsConsumer: the retry schedule lives in Redis:
// an entry whose handler failed in one consumer, which then stops, is
// retried by another consumer of the group when due, not after the minimum
// idle time (30s). An entry owned by RetryOwner without a schedule (given
// back by an earlier version) is still retried, after its crash backoff.
func TestRetryScheduleOutlivesItsConsumer(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	stream, group := srv.Key("jobs"), "g"
	ids := publishN(t, srv.Client, stream, 0, 1)
	const after = 500 * time.Millisecond
	var times callTimes
	failing := consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		times.add(m.ID)
		return consumer.RetryAfter(errors.New("later"), after)
	})
	a := newConsumer(t, srv.Client, stream, group, failing, consumer.WithName("a"), consumer.WithMinIdle(30*time.Second))
	stop := runConsumer(t, a)
	waitFor(t, 30*time.Second, "the entry scheduled for its retry", func() bool {
		return srv.Client.ZCard(ctx, consumer.RetryKey(stream, group)).Val() == 1
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if p := pendingOf(t, srv.Client, stream, group, ""); len(p) != 1 || p[0].Consumer != consumer.RetryOwner {
		t.Fatalf("pending %+v, want the entry owned by %s", p, consumer.RetryOwner)
	}

	var done callTimes
	ok := consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error { done.add(m.ID); return nil })
	b := newConsumer(t, srv.Client, stream, group, ok, consumer.WithName("b"), consumer.WithMinIdle(30*time.Second))
	stop = runConsumer(t, b)
	waitFor(t, 30*time.Second, "the entry retried by b", func() bool { return len(done.get(ids[0])) == 1 })
	if gap := done.get(ids[0])[0].Sub(times.get(ids[0])[0]); gap < after || gap > after+time.Second+after/5 {
		t.Errorf("retried %v after the failure, want within [%v, %v]", gap, after, after+time.Second+after/5)
	}

	// An entry parked without a schedule, as earlier versions did.
	legacy := publishN(t, srv.Client, stream, 1, 1)[0]
	waitFor(t, 30*time.Second, "the second entry handled", func() bool { return len(done.get(legacy)) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	old := publishN(t, srv.Client, stream, 2, 1)[0]
	if err := srv.Client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: consumer.RetryOwner, Streams: []string{stream, ">"}, Count: 1, Block: -1}).Err(); err != nil {
		t.Fatal(err)
	}
	c := newConsumer(t, srv.Client, stream, group, ok, consumer.WithName("c"),
		consumer.WithMinIdle(100*time.Millisecond), consumer.WithClaimInterval(20*time.Millisecond))
	stop = runConsumer(t, c)
	waitFor(t, 30*time.Second, "the unscheduled entry retried", func() bool { return len(done.get(old)) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := pendingCount(t, srv.Client, stream, group); n != 0 {
		t.Errorf("%d pending", n)
	}
}
