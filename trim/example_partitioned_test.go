package trim_test

import (
	"context"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/trim"
)

// Retention of a partitioned stream: each partition is trimmed against its
// own groups.
func ExampleTrimPartitioned() {
	mr := miniredis.NewMiniRedis() // any Redis server works: this one is embedded
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()

	// What a partitioned producer and consumer leave behind: the stored
	// layout, five entries in each of two partitions, and the group
	// "mailer" on both. It has read everything in partition 0, and only
	// up to the second entry in partition 1.
	parts, err := midstream.EnsurePartitions(ctx, rdb, "events", midstream.Partitions{Count: 2})
	if err != nil {
		panic(err)
	}
	for _, p := range parts {
		for i := 1; i <= 5; i++ {
			rdb.XAdd(ctx, &redis.XAddArgs{Stream: p, ID: fmt.Sprintf("%d-0", i), Values: []string{"n", fmt.Sprint(i)}})
		}
	}
	rdb.XGroupCreate(ctx, parts[0], "mailer", "5-0")
	rdb.XGroupCreate(ctx, parts[1], "mailer", "2-0")

	res, err := trim.TrimPartitioned(ctx, rdb, "events", trim.Policy{MaxLen: 1})
	if err != nil {
		panic(err)
	}
	for i, r := range res { // r.Stream is the partition's key, parts[i]
		fmt.Printf("partition %d: trimmed %d, %d left, held back %d %v\n", i, r.Trimmed, r.Len, r.HeldBack, r.HeldBackBy)
	}
	// Output:
	// partition 0: trimmed 4, 1 left, held back 0 []
	// partition 1: trimmed 2, 3 left, held back 2 [{mailer 3-0 undelivered}]
}
