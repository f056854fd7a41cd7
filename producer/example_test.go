package producer_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
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
	ctx := context.Background()

	p, err := producer.New[Activity](rdb, "activity")
	if err != nil {
		panic(err)
	}
	if _, err := p.Publish(ctx, Activity{UserID: "123", Action: "purchase", Amount: 9.99}, producer.ID("1-1")); err != nil {
		panic(err)
	}
	// Any client reads the entry as flat fields.
	for _, m := range rdb.XRange(ctx, "activity", "-", "+").Val() {
		fmt.Println(m.ID, m.Values["userId"], m.Values["action"], m.Values["amount"])
	}
	// Output: 1-1 123 purchase 9.99
}

func ExampleProducer_PublishBatch() {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	p, err := producer.New[map[string]string](rdb, "jobs", producer.WithIDFunc(func(m map[string]string) string {
		return m["n"] + "-0"
	}))
	if err != nil {
		panic(err)
	}
	// Entry 2 repeats an ID: only it fails, the others are added in order.
	ids, err := p.PublishBatch(context.Background(), []map[string]string{{"n": "1"}, {"n": "1"}, {"n": "3"}})
	var be *producer.BatchError
	if errors.As(err, &be) {
		fmt.Println("failed:", be.Failed(), errors.Is(be.Errs[1], midstream.ErrIDNotIncreasing))
	}
	fmt.Printf("%q\n", ids)
	// Output:
	// failed: 1 true
	// ["1-0" "" "3-0"]
}

func ExampleWithDurable() {
	mr := miniredis.NewMiniRedis() // a server without replicas
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	// Wait up to 100ms for one replica to confirm each entry.
	p, err := producer.New[map[string]string](rdb, "orders", producer.WithDurable(1, 100*time.Millisecond))
	if err != nil {
		panic(err)
	}
	id, err := p.Publish(context.Background(), map[string]string{"n": "1"}, producer.ID("1-1"))
	var de *producer.DurabilityError
	if errors.As(err, &de) {
		// Written, but a failover could lose it: the caller decides.
		fmt.Println(id, errors.Is(err, producer.ErrNotDurable), de.Acked, "of", de.Want)
	}
	// Output: 1-1 true 0 of 1
}
