package producer_test

import (
	"context"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/producer"
)

type Order struct {
	CustomerID string `redis:"customer"`
	Total      int    `redis:"total"`
}

func ExampleWithPartitions() {
	mr := miniredis.NewMiniRedis() // any Redis server or cluster works: this one is embedded
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()

	p, err := producer.New[Order](rdb, "orders",
		producer.WithPartitions(midstream.Partitions{Count: 3}),
		producer.WithPartitionKeyFunc(func(o Order) string { return o.CustomerID }))
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Partitions())
	for _, o := range []Order{{"ann", 10}, {"bob", 20}, {"ann", 30}} {
		if _, err := p.Publish(ctx, o); err != nil {
			panic(err)
		}
	}
	// One customer's orders are in one partition, in order.
	ann := p.Partitions()[midstream.PartitionOf("ann", 3)]
	for _, m := range rdb.XRange(ctx, ann, "-", "+").Val() {
		if m.Values["customer"] == "ann" {
			fmt.Println(m.Values["total"])
		}
	}
	// Output:
	// [orders:{0.1} orders:{1.4} orders:{2.4}]
	// 10
	// 30
}
