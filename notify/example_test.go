package notify_test

import (
	"context"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/notify"
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

	n, err := notify.New(rdb)
	if err != nil {
		panic(err)
	}
	first, _ := n.Send(ctx, "123", "Welcome")
	_, _ = n.Send(ctx, "123", "Your order shipped")
	// Another client marks the first one read the article's way.
	rdb.XAdd(ctx, &redis.XAddArgs{Stream: "notifications:123", Values: []string{"markedReadId", first, "readAt", "1"}})

	count, _ := n.UnreadCount(ctx, "123")
	fmt.Println("unread:", count)
	page, _ := n.List(ctx, "123", "", 10)
	for _, nt := range page.Items {
		fmt.Println(nt.Content, nt.Read)
	}
	// Output:
	// unread: 1
	// Your order shipped false
	// Welcome true
}

// Fields beyond the content, and an idempotency key: a retried Send
// returns the first ID and notifies nobody twice.
func ExampleNotifier_Send() {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()

	n, err := notify.New(rdb)
	if err != nil {
		panic(err)
	}
	send := func() string {
		id, err := n.Send(ctx, "123", "Your order shipped",
			notify.WithFields(map[string]string{"orderId": "o-1"}),
			notify.WithIdempotencyKey("shipped:o-1"))
		if err != nil {
			panic(err)
		}
		return id
	}
	first, again := send(), send()
	fmt.Println("same ID:", first == again)
	for page, err := range n.UnreadPages(ctx, "123", "", 10) {
		if err != nil {
			panic(err)
		}
		for _, nt := range page.Items {
			fmt.Println(nt.Content, nt.Fields["orderId"])
		}
	}
	// Output:
	// same ID: true
	// Your order shipped o-1
}
