package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/producer"
)

type Activity struct {
	UserID string  `redis:"userId"`
	Action string  `redis:"action"`
	Amount float64 `redis:"amount"`
}

func Example() {
	mr := miniredis.NewMiniRedis() // any Redis server works: this one is embedded
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	p, err := producer.New[Activity](rdb, "activity")
	if err != nil {
		panic(err)
	}
	for _, a := range []Activity{{"123", "purchase", 9.99}, {"456", "refund", 5}, {"123", "purchase", 24.5}} {
		if _, err := p.Publish(ctx, a); err != nil {
			panic(err)
		}
	}

	handled := 0
	c, err := consumer.New(rdb, "activity", "billing",
		consumer.Typed(func(ctx context.Context, a Activity, m *consumer.Message) error {
			fmt.Println(a.UserID, a.Action, a.Amount)
			if handled++; handled == 3 {
				cancel() // stop the example; a service runs until shutdown
			}
			return nil // acknowledges the entry
		}),
		consumer.WithStart(consumer.StartBeginning), // the entries were added before the group
		consumer.WithConcurrency(1),                 // one at a time, in stream order
		consumer.WithBlock(100*time.Millisecond),    // stopping waits for the current read
	)
	if err != nil {
		panic(err)
	}
	err = c.Run(ctx) // until ctx is cancelled
	fmt.Println("stopped:", err, "acked:", c.Stats().Acked)
	// Output:
	// 123 purchase 9.99
	// 456 refund 5
	// 123 purchase 24.5
	// stopped: <nil> acked: 3
}

// logging is a Middleware that logs each message's outcome and how long its
// handler took.
func logging(log *slog.Logger) consumer.Middleware {
	return func(next consumer.Handler) consumer.Handler {
		return consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
			start := time.Now()
			err := next.Handle(ctx, m)
			level := slog.LevelInfo
			if err != nil {
				level = slog.LevelWarn
			}
			log.Log(ctx, level, "handled", "id", m.ID, "took", time.Since(start), "error", err)
			return err
		})
	}
}

func ExampleMiddleware() {
	// Drop the time and duration to keep this example's output stable.
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "took" {
				return slog.Attr{}
			}
			return a
		},
	}))
	h := consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		if m.Field("userId") == "" {
			return errors.New("no user")
		}
		return nil
	})

	// With a Consumer: consumer.New(rdb, stream, group, h, consumer.WithMiddleware(logging(log))).
	wrapped := consumer.Chain(h, logging(log))
	ctx := context.Background()
	_ = wrapped.Handle(ctx, consumer.NewMessage(midstream.Entry{ID: "1-0", Fields: map[string]string{"userId": "123"}}))
	_ = wrapped.Handle(ctx, consumer.NewMessage(midstream.Entry{ID: "2-0", Fields: map[string]string{}}))
	// Output:
	// level=INFO msg=handled id=1-0 error=<nil>
	// level=WARN msg=handled id=2-0 error="no user"
}

// A handler that is told by a downstream service when to come back asks for
// that delay; other failures follow the retry policy, here 200ms doubling
// to 10s, independent of crash detection (WithMinIdle).
func ExampleRetryAfter() {
	h := consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		if m.Field("quota") == "exhausted" {
			return consumer.RetryAfter(errors.New("quota exhausted"), 30*time.Second)
		}
		return nil
	})
	_, err := consumer.New(redis.NewClient(&redis.Options{}), "{jobs}", "workers", h,
		consumer.WithRetryDelay(200*time.Millisecond, 10*time.Second),
		consumer.WithHandlerTimeout(5*time.Second))
	fmt.Println(err)
	// Output:
	// <nil>
}
