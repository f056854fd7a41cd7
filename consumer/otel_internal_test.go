package consumer

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
)

// TestObserveOffAllocatesNothing checks the zero cost of observability while
// the global providers are unset (as in this test binary): handling a
// message, even one carrying trace context, allocates nothing for tracing
// or metrics.
func TestObserveOffAllocatesNothing(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	c, err := New(rdb, "s", "g", HandlerFunc(func(context.Context, *Message) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	m := &Message{Stream: "s", ID: "1700000000000-0", values: midstream.Values{
		"data": "x", midstream.FieldTraceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	}, Deliveries: 1}
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		mctx, p := c.obs.begin(ctx, m)
		if mctx != ctx {
			t.Fatal("begin changed ctx while tracing is off")
		}
		c.obs.handled(&p, m, nil)
		c.obs.end(&p)
		c.stats.handled.Add(1)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per message with observability off, want 0", allocs)
	}
}
