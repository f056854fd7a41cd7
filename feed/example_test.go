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

// Fan-out on write: each follower's timeline receives a copy, Followers
// lists who gets one, and Pages walks a feed page by page.
func ExampleFeed_Pages() {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()

	f, err := feed.New(rdb, feed.WithFanOutOnWrite(1000), feed.WithBackfill(10))
	if err != nil {
		panic(err)
	}
	_, _ = f.Append(ctx, "ann", map[string]string{"postId": "1"})
	_ = f.Follow(ctx, "bob", "ann") // backfills ann's post 1 into bob's timeline
	_ = f.Follow(ctx, "cy", "ann")
	for i := 2; i <= 5; i++ {
		_, _ = f.Append(ctx, "ann", map[string]string{"postId": fmt.Sprint(i)})
	}
	followers, _ := f.Followers(ctx, "ann")
	fmt.Println("followers:", followers)
	for page, err := range f.Pages(ctx, "bob", "", 2) {
		if err != nil {
			panic(err)
		}
		for _, e := range page.Items {
			fmt.Print(e.Fields["postId"], " ")
		}
		fmt.Println("| next page:", page.Next != "")
	}
	// Output:
	// followers: [bob cy]
	// 5 4 | next page: true
	// 3 2 | next page: true
	// 1 | next page: false
}
