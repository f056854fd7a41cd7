package live_test

import (
	"context"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/live"
)

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

	rdb.XAdd(ctx, &redis.XAddArgs{Stream: "activity", ID: "1-1", Values: []string{"actor", "ann"}})
	rdb.XAdd(ctx, &redis.XAddArgs{Stream: "activity", ID: "2-1", Values: []string{"actor", "bob"}})

	// Resume after 1-1: the backlog first, then new entries as they come.
	sub, err := live.Subscribe(ctx, rdb, "activity", "activity:new", "1-1")
	if err != nil {
		panic(err)
	}
	defer sub.Close()
	rdb.XAdd(ctx, &redis.XAddArgs{Stream: "activity", ID: "3-1", Values: []string{"actor", "cy"}})
	rdb.Publish(ctx, "activity:new", "3-1")

	for range 2 {
		e := <-sub.C()
		fmt.Println(e.ID, e.Fields["actor"])
	}
	// Output:
	// 2-1 bob
	// 3-1 cy
}
