package deadletter_test

import (
	"context"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/deadletter"
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

	// An entry of {orders} read by worker-1 of the group billing, still pending.
	rdb.XAdd(ctx, &redis.XAddArgs{Stream: "{orders}", ID: "1-1", Values: []string{"orderId", "42", "amount", "oops"}})
	rdb.XGroupCreate(ctx, "{orders}", "billing", "0")
	msgs := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "billing", Consumer: "worker-1", Streams: []string{"{orders}", ">"}}).Val()
	m := msgs[0].Messages[0]

	q, err := deadletter.New(rdb, "{orders}")
	if err != nil {
		panic(err)
	}
	fields := map[string]string{}
	for k, v := range m.Values {
		fields[k] = v.(string)
	}
	moved, err := q.Move(ctx, deadletter.MoveRequest{
		ID: m.ID, Fields: fields, Group: "billing", Consumer: "worker-1",
		Deliveries: 1, Reason: "amount: not a number",
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("moved:", moved, "to", q.Key(), "pending:", rdb.XPending(ctx, "{orders}", "billing").Val().Count)

	entries, _, err := q.List(ctx, deadletter.ListOptions{ErrorContains: "not a number"})
	if err != nil {
		panic(err)
	}
	e := entries[0]
	fmt.Println(e.OriginalID, e.Group, e.Consumer, e.Deliveries, e.Error, e.Fields)

	res, err := q.Redrive(ctx, deadletter.RedriveOptions{})
	if err != nil {
		panic(err)
	}
	n, _ := q.Count(ctx)
	// Back to billing only: its redrive stream, which billing's consumers
	// read beside {orders}; other groups of {orders} never see it.
	side := deadletter.RedriveKey("{orders}", "billing")
	fmt.Println("redriven:", res.Redriven, "left in the DLQ:", n, "to", side+":", rdb.XLen(ctx, side).Val())
	// Output:
	// moved: true to {orders}:dlq pending: 0
	// 1-1 billing worker-1 1 amount: not a number map[amount:oops orderId:42]
	// redriven: 1 left in the DLQ: 0 to {orders}:midstream:redrive:billing: 1
}
