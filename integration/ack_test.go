package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/integration/redistest"
)

// TestSyncAckConfirmsBeforeNextEntry: with WithSyncAck, a worker starts its
// next entry only once Redis has confirmed the previous one's XACK, even with
// an ack interval of an hour (coalesced acks would wait for it); WithOnAck
// reports every confirmed ID exactly once.
func TestSyncAckConfirmsBeforeNextEntry(t *testing.T) {
	srv := redistest.Start(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	stream, group := srv.Key("sync"), "g"
	ids := publishN(t, srv.Client, stream, 0, 50)

	var mu sync.Mutex
	var prev string
	var problems []string
	acked := map[string]int{}
	h := consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		mu.Lock()
		p := prev
		prev = m.ID
		mu.Unlock()
		if p != "" {
			pend, err := srv.Client.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: group, Start: p, End: p, Count: 1}).Result()
			if err != nil || len(pend) != 0 {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%s started while %s still pending (%v)", m.ID, p, err))
				mu.Unlock()
			}
		}
		return nil
	})
	c := newConsumer(t, srv.Client, stream, group, h, consumer.WithStart(consumer.StartBeginning),
		consumer.WithConcurrency(1), consumer.WithSyncAck(), consumer.WithAcks(consumer.DefaultAckBatch, time.Hour),
		consumer.WithOnAck(func(ids []string) {
			mu.Lock()
			for _, id := range ids {
				acked[id]++
			}
			mu.Unlock()
		}))
	stop := runConsumer(t, c)
	waitFor(t, time.Minute, "every entry acknowledged", func() bool { return c.Stats().Acked == int64(len(ids)) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
	for _, id := range ids {
		if acked[id] != 1 {
			t.Errorf("ack hook saw %s %d times, want once", id, acked[id])
		}
	}
	if n := pendingCount(t, srv.Client, stream, group); n != 0 {
		t.Errorf("%d pending", n)
	}
}
