package feed_test

import (
	"context"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/feed"
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

	f, err := feed.New(rdb)
	if err != nil {
		panic(err)
	}
	_ = f.Follow(ctx, "bob", "ann")
	_, _ = f.Append(ctx, "ann", map[string]string{"type": "post", "postId": "1"})
	_, _ = f.Append(ctx, "cy", map[string]string{"type": "post", "postId": "2"})
	_, _ = f.Append(ctx, "ann", map[string]string{"type": "like", "postId": "3"})

	page, _ := f.Read(ctx, "bob", "", 10)
	for _, e := range page.Items {
		fmt.Println(e.Fields["actor"], e.Fields["type"], e.Fields["postId"])
	}
	// Output:
	// ann like 3
	// ann post 1
}
