package consumer_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/producer"
)

func ExampleWithPartitions() {
	mr := miniredis.NewMiniRedis() // any Redis server or cluster works: this one is embedded
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	layout := midstream.Partitions{Count: 3} // the same layout for producers and consumers
	p, err := producer.New[Activity](rdb, "activity", producer.WithPartitions(layout),
		producer.WithPartitionKeyFunc(func(a Activity) string { return a.UserID }))
	if err != nil {
		panic(err)
	}
	for _, a := range []Activity{{"123", "purchase", 9.99}, {"456", "refund", 5}, {"789", "purchase", 24.5}} {
		if _, err := p.Publish(ctx, a); err != nil {
			panic(err)
		}
	}

	var mu sync.Mutex
	var seen []string
	c, err := consumer.New(rdb, "activity", "billing",
		consumer.Typed(func(ctx context.Context, a Activity, m *consumer.Message) error {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, a.UserID+" from "+m.Stream)
			if len(seen) == 3 {
				cancel()
			}
			return nil
		}),
		consumer.WithPartitions(layout),          // reads every partition in the group
		consumer.WithBlock(100*time.Millisecond), // stopping waits for the current reads
	)
	if err != nil {
		panic(err)
	}
	err = c.Run(ctx)
	sort.Strings(seen) // partitions have no order between them
	for _, s := range seen {
		fmt.Println(s)
	}
	fmt.Println("stopped:", err, "acked:", c.Stats().Acked)
	// Output:
	// 123 from activity:{2.4}
	// 456 from activity:{1.4}
	// 789 from activity:{1.4}
	// stopped: <nil> acked: 3
}
