package integration

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/integration/redistest"
)

// TestReclaimReachesEntriesBehindBackoff: entries waiting out a long retry
// backoff at the head of the pending list fill a reclaim pass's window; the
// entry of a crashed consumer behind them must still be reclaimed (passes
// move through the list instead of always starting at its head).
func TestReclaimReachesEntriesBehindBackoff(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream, group := srv.Key("hol"), "g"
	if err := srv.Client.XGroupCreateMkStream(ctx, stream, group, "0").Err(); err != nil {
		t.Fatal(err)
	}
	// Ten entries pending for consumer "b", delivered 20 times already and
	// idle: their backoff (capped at an hour) is far from over, so every
	// pass finds them first and leaves them.
	ids := publishN(t, srv.Client, stream, 0, 10)
	if err := srv.Client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "b", Streams: []string{stream, ">"}, Count: 10, Block: -1}).Err(); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if err := srv.Client.Do(ctx, "XCLAIM", stream, group, "b", 0, id, "IDLE", 1000, "RETRYCOUNT", 20).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// A crashed consumer "a" holds one later entry.
	tx := srv.Client.TxPipeline()
	tx.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"n", "victim"}})
	tx.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "a", Streams: []string{stream, ">"}, Count: 1, Block: -1})
	if _, err := tx.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	var handledVictim atomic.Bool
	c := newConsumer(t, srv.Client, stream, group, consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		if m.Field("n") == "victim" {
			handledVictim.Store(true)
		}
		return nil
	}), consumer.WithBatchSize(1), consumer.WithMaxDeliveries(50), // a window of 10 entries
		consumer.WithMinIdle(50*time.Millisecond), consumer.WithClaimInterval(20*time.Millisecond), consumer.WithRetryBackoff(time.Hour))
	stop := runConsumer(t, c)
	waitFor(t, time.Minute, "the crashed consumer's entry reclaimed and handled", handledVictim.Load)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
