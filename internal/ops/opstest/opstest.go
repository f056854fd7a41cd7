// Package opstest builds the data the tests of the midstream command and
// the dashboard look at: a stream with two groups, pending entries and dead
// letters.
package opstest

import (
	"context"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/deadletter"
)

// Reasons of the fixture's dead letters.
const (
	ReasonTimeout = "timeout talking to payments"
	ReasonDecode  = "decode failed"
)

// Build fills stream with 10 entries (fields n=0..9, kind "a" for even n,
// "b" for odd) and returns their IDs. Group billing read n=0..4 as
// consumer w1, acknowledged n=0 and dead-lettered n=1 and n=2
// (ReasonTimeout); group ship read n=0..1 as w2 and dead-lettered n=0
// (ReasonDecode). Left pending: billing n=3 and n=4, ship n=1; lags:
// billing 5, ship 8; dead letters, oldest first: n=1, n=2 (billing), n=0
// (ship), in deadletter.Key(stream).
func Build(t testing.TB, rdb redis.UniversalClient, stream string) []string {
	t.Helper()
	ctx := context.Background()
	var ids []string
	for i := range 10 {
		kind := "b"
		if i%2 == 0 {
			kind = "a"
		}
		id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"n", fmt.Sprint(i), "kind", kind}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, g := range []string{"billing", "ship"} {
		if err := rdb.XGroupCreate(ctx, stream, g, "0").Err(); err != nil {
			t.Fatal(err)
		}
	}
	read := func(group, consumer string, n int64) {
		if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: consumer, Streams: []string{stream, ">"}, Count: n}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	read("billing", "w1", 5)
	read("ship", "w2", 2)
	if err := rdb.XAck(ctx, stream, "billing", ids[0]).Err(); err != nil {
		t.Fatal(err)
	}
	q, err := deadletter.New(rdb, stream)
	if err != nil {
		t.Fatal(err)
	}
	move := func(i int, group, consumer, reason string) {
		kind := "b"
		if i%2 == 0 {
			kind = "a"
		}
		moved, err := q.Move(ctx, deadletter.MoveRequest{ID: ids[i], Fields: map[string]string{"n": fmt.Sprint(i), "kind": kind},
			Group: group, Consumer: consumer, Reason: reason})
		if err != nil || !moved {
			t.Fatalf("opstest: dead-letter n=%d: moved %t, %v", i, moved, err)
		}
	}
	move(1, "billing", "w1", ReasonTimeout)
	move(2, "billing", "w1", ReasonTimeout)
	move(0, "ship", "w2", ReasonDecode)
	return ids
}
