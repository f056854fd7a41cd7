package producer_test

import (
	"context"
	"errors"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/producer"
)

// A partition key function that panics fails the call, not the process.
func TestPartitionKeyFuncPanics(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	p, err := producer.New[map[string]string](rdb, "orders", producer.WithPartitions(midstream.Partitions{Count: 2}),
		producer.WithPartitionKeyFunc(func(v map[string]string) string {
			if v["k"] == "" {
				panic("no key")
			}
			return v["k"]
		}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := p.Publish(ctx, map[string]string{"x": "1"}); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Fatalf("publish: %v", err)
	}
	ids, err := p.PublishBatch(ctx, []map[string]string{{"k": "a"}, {"x": "1"}})
	if !errors.Is(err, producer.ErrNotSent) || ids[0] != "" {
		t.Fatalf("batch: %v %v", ids, err)
	}
	for _, k := range p.Partitions() {
		if mr.Exists(k) {
			t.Fatalf("%s written", k)
		}
	}
	if _, err := p.Publish(ctx, map[string]string{"k": "a"}); err != nil {
		t.Fatal(err)
	}
}

// A panic in the caller's code while a partitioned batch is prepared (here
// the codec, run per partition) reaches the caller's goroutine, as it does
// for a batch to one stream, where the caller may recover it: it must not
// take down the process from a goroutine of the producer.
func TestPartitionedBatchPanicReachesCaller(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	p, err := producer.New[map[string]string](rdb, "orders", producer.WithPartitions(midstream.Partitions{Count: 3}),
		producer.WithIDFunc(func(v map[string]string) string {
			if v["bad"] != "" {
				panic("bad value")
			}
			return ""
		}))
	if err != nil {
		t.Fatal(err)
	}
	var got any
	func() {
		defer func() { got = recover() }()
		_, _ = p.PublishBatch(context.Background(), []map[string]string{{"k": "1"}, {"bad": "1"}, {"k": "2"}})
	}()
	if got != "bad value" {
		t.Fatalf("recovered %v, want the ID func's panic", got)
	}
}
