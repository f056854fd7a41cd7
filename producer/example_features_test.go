package producer_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/producer"
)

// An idempotency key makes a repeated publish (a retry after an error that
// left the outcome unknown, a message delivered twice upstream) return the
// first entry's ID instead of adding another entry.
func ExampleIdempotencyKey() {
	mr := miniredis.NewMiniRedis() // any Redis server works: this one is embedded
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()

	p, err := producer.New[map[string]string](rdb, "payments")
	if err != nil {
		panic(err)
	}
	first, err := p.Publish(ctx, map[string]string{"order": "o-1", "amount": "9.99"}, producer.IdempotencyKey("o-1"))
	if err != nil {
		panic(err)
	}
	again, err := p.Publish(ctx, map[string]string{"order": "o-1", "amount": "9.99"}, producer.IdempotencyKey("o-1"))
	if err != nil {
		panic(err)
	}
	fmt.Println(first == again, rdb.XLen(ctx, "payments").Val())
	// Output: true 1
}

// WithIdempotencyKeyFunc takes the key from the value, for every Publish
// and every entry of PublishBatch.
func ExampleWithIdempotencyKeyFunc() {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	p, err := producer.New[map[string]string](rdb, "payments",
		producer.WithIdempotencyKeyFunc(func(m map[string]string) string { return m["order"] }),
		producer.WithIdempotencyWindow(10*time.Minute))
	if err != nil {
		panic(err)
	}
	ids, err := p.PublishBatch(context.Background(), []map[string]string{{"order": "o-1"}, {"order": "o-2"}, {"order": "o-1"}})
	if err != nil {
		panic(err)
	}
	fmt.Println(ids[0] == ids[2], ids[0] != ids[1], rdb.XLen(context.Background(), "payments").Val())
	// Output: true true 2
}

// PublishIn stores an entry that a Scheduler (or a consumer's Run) appends
// to the stream once it is due; until then Cancel drops it.
func ExampleProducer_PublishIn() {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()

	p, err := producer.New[map[string]string](rdb, "reminders")
	if err != nil {
		panic(err)
	}
	if _, err := p.PublishIn(ctx, map[string]string{"text": "now"}, 0); err != nil {
		panic(err)
	}
	later, err := p.PublishIn(ctx, map[string]string{"text": "in an hour"}, time.Hour)
	if err != nil {
		panic(err)
	}

	s, err := producer.NewScheduler(rdb, "reminders")
	if err != nil {
		panic(err)
	}
	moved, next, err := s.MoveDue(ctx) // Run(ctx) does this in a loop
	if err != nil {
		panic(err)
	}
	fmt.Println("moved:", moved, "next due within the hour:", next > 0 && next <= time.Hour)
	cancelled, err := p.Cancel(ctx, later)
	if err != nil {
		panic(err)
	}
	fmt.Println("cancelled:", cancelled, "in the stream:", rdb.XLen(ctx, "reminders").Val())
	// Output:
	// moved: 1 next due within the hour: true
	// cancelled: true in the stream: 1
}
