package health_test

import (
	"context"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/health"
)

// The health of a partitioned stream: each partition's, and the total of
// the logical stream.
func ExampleSnapshotPartitioned() {
	mr := miniredis.NewMiniRedis() // any Redis server works: this one is embedded
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()

	// What a producer and a consumer with WithPartitions(midstream.Partitions{Count: 3})
	// leave behind: the stored layout, entries in the partitions, and the
	// group "billing" on every partition. Its consumer w1 has read two
	// entries of partition 0 and one of partition 1, and acknowledged one.
	parts, err := midstream.EnsurePartitions(ctx, rdb, "orders", midstream.Partitions{Count: 3})
	if err != nil {
		panic(err)
	}
	for i, n := range []int{3, 2, 0} {
		for j := 1; j <= n; j++ {
			rdb.XAdd(ctx, &redis.XAddArgs{Stream: parts[i], ID: fmt.Sprintf("%d-0", 1000*(i+1)+j), Values: []string{"n", "1"}})
		}
		rdb.XGroupCreateMkStream(ctx, parts[i], "billing", "0")
	}
	rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "billing", Consumer: "w1", Streams: []string{parts[0], ">"}, Count: 2})
	rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "billing", Consumer: "w1", Streams: []string{parts[1], ">"}, Count: 1})
	rdb.XAck(ctx, parts[1], "billing", "2001-0")

	h, err := health.SnapshotPartitioned(ctx, rdb, "orders")
	if err != nil {
		panic(err) // errors.Is(err, midstream.ErrNoStream): no layout stored for "orders"
	}
	for i, p := range h.Partitions { // p.Stream is the partition's key, parts[i]
		g, _ := p.Group("billing")
		fmt.Printf("partition %d: %d entries, billing pending %d, %d dead letters\n", i, p.Length, g.Pending, p.DeadLetter.Length)
	}
	g, _ := h.Group("billing")
	fmt.Printf("%s: %d entries, billing pending %d (oldest %s, in partition %d), %d consumer\n", h.Stream, h.Total.Length,
		g.Pending, g.OldestPendingID, h.OldestPendingPartition("billing"), g.ConsumerCount)
	// Output:
	// partition 0: 3 entries, billing pending 2, 0 dead letters
	// partition 1: 2 entries, billing pending 0, 0 dead letters
	// partition 2: 0 entries, billing pending 0, 0 dead letters
	// orders: 5 entries, billing pending 2 (oldest 1001-0, in partition 0), 1 consumer
}
