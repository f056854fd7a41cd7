package trim_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/trim"
)

func Example() {
	mr := miniredis.NewMiniRedis() // any Redis server works: this one is embedded
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()

	// Ten entries; the group "mailer" has read the first four and
	// acknowledged three: entry 4-1 is pending, 5-1 onwards undelivered.
	for i := 1; i <= 10; i++ {
		rdb.XAdd(ctx, &redis.XAddArgs{Stream: "events", ID: fmt.Sprintf("%d-1", i), Values: []string{"n", fmt.Sprint(i)}})
	}
	rdb.XGroupCreate(ctx, "events", "mailer", "0")
	rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "mailer", Consumer: "w1", Streams: []string{"events", ">"}, Count: 4})
	rdb.XAck(ctx, "events", "mailer", "1-1", "2-1", "3-1")

	policy := trim.Policy{MaxLen: 2}
	res, err := trim.Trim(ctx, rdb, "events", policy)
	if err != nil {
		panic(err)
	}
	fmt.Printf("trimmed %d, %d left; held back %d for %+v\n", res.Trimmed, res.Len, res.HeldBack, res.HeldBackBy)

	// The group catches up: the next pass trims to the policy.
	rdb.XAck(ctx, "events", "mailer", "4-1")
	rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "mailer", Consumer: "w1", Streams: []string{"events", ">"}})
	rdb.XAck(ctx, "events", "mailer", "5-1", "6-1", "7-1", "8-1", "9-1", "10-1")
	res, _ = trim.Trim(ctx, rdb, "events", policy)
	fmt.Printf("trimmed %d, %d left; held back %d\n", res.Trimmed, res.Len, res.HeldBack)
	// Output:
	// trimmed 3, 7 left; held back 5 for [{Group:mailer Until:4-1 Reason:pending}]
	// trimmed 5, 2 left; held back 0
}

func ExampleNew() {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	for i := 1; i <= 100; i++ {
		rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: "orders:eu", Values: []string{"n", fmt.Sprint(i)}})
	}

	reports := make(chan trim.Result, 1)
	t, err := trim.New(rdb, trim.Policy{MaxLen: 10},
		trim.WithPattern("orders:*"), trim.WithInterval(10*time.Millisecond),
		trim.WithReport(func(r trim.Result, err error) {
			if err == nil && r.Trimmed > 0 {
				select {
				case reports <- r:
				default:
				}
			}
		}))
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- t.Run(ctx) }()
	r := <-reports
	cancel()
	<-done
	fmt.Printf("%s: trimmed %d, %d left\n", r.Stream, r.Trimmed, r.Len)
	// Output: orders:eu: trimmed 90, 10 left
}

// What a pass would trim now, and who holds entries back, without trimming.
func ExamplePreview() {
	mr := miniredis.NewMiniRedis() // any Redis server works: this one is embedded
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	for i := 1; i <= 10; i++ {
		rdb.XAdd(ctx, &redis.XAddArgs{Stream: "activity", ID: fmt.Sprintf("%d-0", i), Values: []string{"n", fmt.Sprint(i)}})
	}
	rdb.XGroupCreate(ctx, "activity", "mailer", "3-0") // it has read up to 3-0

	res, err := trim.Preview(ctx, rdb, "activity", trim.Policy{MaxLen: 2})
	if err != nil {
		panic(err)
	}
	fmt.Println("would trim", res.Trimmed, "leaving", res.Len)
	for _, h := range res.HeldBackBy {
		fmt.Printf("%s needs %s (%s)\n", h.Group, h.Until, h.Reason)
	}
	fmt.Println("length now", rdb.XLen(ctx, "activity").Val())
	// Output:
	// would trim 3 leaving 7
	// mailer needs 4-0 (undelivered)
	// length now 10
}
