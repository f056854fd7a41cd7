package integration

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/integration/redistest"
)

type concLedger struct {
	mu      sync.Mutex
	calls   map[string]int
	running map[string]int
	overlap map[string]bool
	deliv   map[string][]int64
}

func newConcLedger() *concLedger {
	return &concLedger{calls: map[string]int{}, running: map[string]int{}, overlap: map[string]bool{}, deliv: map[string][]int64{}}
}
func (l *concLedger) enter(m *consumer.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls[m.ID]++
	l.running[m.ID]++
	if l.running[m.ID] > 1 {
		l.overlap[m.ID] = true
	}
	l.deliv[m.ID] = append(l.deliv[m.ID], m.Deliveries)
}
func (l *concLedger) exit(id string) { l.mu.Lock(); l.running[id]--; l.mu.Unlock() }

// Restart with a stable name and a backlog of own pending entries: the
// reclaim loop claims own entries ahead of the history cursor, then the
// history read delivers them again.
func TestRestartWithBacklogHandlesEachOnce(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream, group := srv.Key("rb"), "g"
	publishN(t, srv.Client, stream, 0, 40)
	if err := srv.Client.XGroupCreate(ctx, stream, group, "0").Err(); err != nil {
		t.Fatal(err)
	}
	// The crashed predecessor "w" read everything.
	if err := srv.Client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "w", Streams: []string{stream, ">"}, Count: 40}).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	l := newConcLedger()
	c := newConsumer(t, srv.Client, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		l.enter(m)
		time.Sleep(100 * time.Millisecond)
		l.exit(m.ID)
		return nil
	}), consumer.WithName("w"), consumer.WithBatchSize(4), consumer.WithConcurrency(2), consumer.WithMaxInFlight(8),
		consumer.WithMinIdle(200*time.Millisecond), consumer.WithClaimInterval(50*time.Millisecond))
	stop := runConsumer(t, c)
	waitFor(t, time.Minute, "nothing pending", func() bool { return pendingCount(t, srv.Client, stream, group) == 0 })
	_ = stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	dups, ov := 0, 0
	for id, n := range l.calls {
		if n > 1 {
			dups++
			t.Logf("%s handled %d times, deliveries %v, overlapping=%v", id, n, l.deliv[id], l.overlap[id])
		}
		if l.overlap[id] {
			ov++
		}
	}
	t.Logf("stats %+v", c.Stats())
	if dups > 0 {
		t.Errorf("%d of 40 entries handled more than once by the one live consumer (%d concurrently)", dups, ov)
	}
}

// A failed read while reclaimed entries (IDs above lastRead) are in flight:
// the history re-read hands them to a second worker.
func TestFailedReadDoesNotRedeliverInFlight(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream, group := srv.Key("fr"), "g"
	if err := srv.Client.XGroupCreateMkStream(ctx, stream, group, "0").Err(); err != nil {
		t.Fatal(err)
	}
	proxy := srv.StartProxy(t)
	via := redis.NewClient(&redis.Options{Addr: proxy.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = via.Close() })
	l := newConcLedger()
	c := newConsumer(t, via, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		l.enter(m)
		if m.Field("n") != "0" {
			time.Sleep(1500 * time.Millisecond)
		}
		l.exit(m.ID)
		return nil
	}), consumer.WithName("b"), consumer.WithBlock(time.Second),
		consumer.WithMinIdle(300*time.Millisecond), consumer.WithClaimInterval(50*time.Millisecond))
	stop := runConsumer(t, c)
	publishN(t, srv.Client, stream, 0, 1) // b reads it: lastRead = e0
	waitFor(t, time.Minute, "e0 acked", func() bool { return c.Stats().Acked == 1 })
	// A consumer "a" takes e1..e5 before b can (same transaction), then dies.
	tx := srv.Client.TxPipeline()
	for i := 1; i <= 5; i++ {
		tx.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"n", string(rune('0' + i))}})
	}
	tx.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "a", Streams: []string{stream, ">"}, Count: 5, Block: -1})
	if _, err := tx.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "b reclaimed a's entries", func() bool { return c.Stats().Reclaimed == 5 })
	time.Sleep(100 * time.Millisecond)
	proxy.Cut() // b's blocked XREADGROUP fails
	waitFor(t, time.Minute, "nothing pending", func() bool { return pendingCount(t, srv.Client, stream, group) == 0 })
	_ = stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, n := range l.calls {
		if n > 1 {
			t.Errorf("%s handled %d times by the one live consumer, deliveries %v, concurrently=%v", id, n, l.deliv[id], l.overlap[id])
		}
	}
}
