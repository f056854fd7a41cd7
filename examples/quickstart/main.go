// Command quickstart publishes typed events to a Redis stream and processes
// them with a consumer group of two workers, on an embedded miniredis or on
// the server at REDIS_URL. One handler call fails: the output shows its
// entry staying pending, waiting for its retry with the server's delivery
// count, until a worker handles it again.
//
//	go run ./examples/quickstart
//	REDIS_URL=redis://localhost:6379/0 go run ./examples/quickstart
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/examples/internal/exampleredis"
	"github.com/midstream-go/midstream/producer"
)

// Activity is the article's activity event, stored as flat fields that any
// Redis client can read.
type Activity struct {
	UserID    string    `redis:"userId"`
	Action    string    `redis:"action"`
	Amount    float64   `redis:"amount"`
	Timestamp time.Time `redis:"timestamp,unixms"`
}

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, out io.Writer) error {
	rdb, where, closeAll, err := exampleredis.Connect(ctx)
	if err != nil {
		return err
	}
	defer closeAll()
	fmt.Fprintln(out, "using", where)

	stream := fmt.Sprintf("quickstart:activity:%d", time.Now().UnixNano())
	defer rdb.Del(ctx, stream)

	if err := publish(ctx, out, rdb, stream); err != nil {
		return err
	}
	return consume(ctx, out, rdb, stream)
}

// publish adds four events, and shows bad input refused.
func publish(ctx context.Context, out io.Writer, rdb *redis.Client, stream string) error {
	p, err := producer.New[Activity](rdb, stream, producer.WithTrim(producer.Trim{MaxLen: 10_000, Approx: true}))
	if err != nil {
		return err
	}
	now := time.Now()
	id, err := p.Publish(ctx, Activity{UserID: "123", Action: "purchase", Amount: 9.99, Timestamp: now})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "published 1 event as %s\n", id)

	ids, err := p.PublishBatch(ctx, []Activity{
		{UserID: "123", Action: "login", Timestamp: now},
		{UserID: "456", Action: "purchase", Amount: 24.5, Timestamp: now},
		{UserID: "789", Action: "logout", Timestamp: now},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "published %d more in one pipeline: %s … %s\n", len(ids), ids[0], ids[len(ids)-1])

	// Bad input is refused before anything is sent, with a clear error.
	small, err := producer.New[map[string]string](rdb, stream, producer.WithMaxEntrySize(64))
	if err != nil {
		return err
	}
	if _, err := small.Publish(ctx, map[string]string{"blob": string(make([]byte, 100))}); errors.Is(err, midstream.ErrTooLarge) {
		fmt.Fprintln(out, "refused an oversized entry:", err)
	}
	return nil
}

// consume runs a group of two workers over the stream. The first attempt at
// user 456's purchase fails, so that entry stays pending, handed to the
// group's retry owner until its retry backoff has passed; a worker started
// later delivers it again.
func consume(ctx context.Context, out io.Writer, rdb *redis.Client, stream string) error {
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format, args...)
	}
	var handled atomic.Int64
	var failedOnce atomic.Bool
	handler := consumer.Typed(func(ctx context.Context, a Activity, m *consumer.Message) error {
		if a.UserID == "456" && failedOnce.CompareAndSwap(false, true) {
			say("  %s failed %s (user %s %s, delivery %d): payment service timed out\n", m.Consumer, m.ID, a.UserID, a.Action, m.Deliveries)
			return errors.New("payment service timed out")
		}
		say("  %s handled %s (user %s %s, delivery %d)\n", m.Consumer, m.ID, a.UserID, a.Action, m.Deliveries)
		handled.Add(1)
		return nil
	})
	// runWorkers runs the named workers until want entries were handled.
	runWorkers := func(want int64, names ...string) error {
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		errs := make(chan error, len(names))
		for _, name := range names {
			c, err := consumer.New(rdb, stream, "billing", handler,
				consumer.WithName(name), consumer.WithStart(consumer.StartBeginning),
				consumer.WithConcurrency(1), consumer.WithBlock(50*time.Millisecond),
				// A short minimum idle time, for the demo: failed entries
				// are retried after 300ms (the default is 30s).
				consumer.WithMinIdle(300*time.Millisecond), consumer.WithClaimInterval(50*time.Millisecond))
			if err != nil {
				return err
			}
			go func() { errs <- c.Run(wctx) }()
		}
		deadline := time.Now().Add(10 * time.Second)
		for handled.Load() < want && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		stop()
		for range names {
			if err := <-errs; err != nil {
				return err
			}
		}
		return nil
	}

	fmt.Fprintln(out, "group \"billing\", workers a and b:")
	if err := runWorkers(3, "worker-a", "worker-b"); err != nil {
		return err
	}
	pending, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: "billing", Start: "-", End: "+", Count: 10}).Result()
	if err != nil {
		return err
	}
	for _, p := range pending {
		fmt.Fprintf(out, "still pending: %s, waiting for its retry (owner %s), delivered %d time(s)\n", p.ID, p.Consumer, p.RetryCount)
	}
	if len(pending) != 1 {
		return fmt.Errorf("%d entries pending, want 1", len(pending))
	}

	fmt.Fprintln(out, "worker-a restarts; once the retry backoff has passed, it claims the failed entry:")
	if err := runWorkers(4, "worker-a"); err != nil {
		return err
	}
	n, err := rdb.XPending(ctx, stream, "billing").Result()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "handled %d entries; %d pending\n", handled.Load(), n.Count)
	return nil
}
