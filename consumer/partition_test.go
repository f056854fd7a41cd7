package consumer_test

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/consumer"
)

// A consumer of many partitions keeps two reads blocked per partition: New
// refuses a client whose pool cannot hold them and some more.
func TestPartitionsNeedPoolSize(t *testing.T) {
	h := consumer.HandlerFunc(func(context.Context, *consumer.Message) error { return nil })
	small := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", PoolSize: 11})
	defer small.Close()
	_, err := consumer.New(small, "orders", "g", h, consumer.WithPartitions(midstream.Partitions{Count: 4}))
	if !errors.Is(err, midstream.ErrInvalidOption) {
		t.Fatalf("4 partitions on a pool of 11: %v", err)
	}
	// Two assigned partitions need fewer.
	if _, err := consumer.New(small, "orders", "g", h, consumer.WithPartitions(midstream.Partitions{Count: 4}),
		consumer.WithAssignedPartitions(0, 1)); err != nil {
		t.Fatalf("2 of 4 partitions on a pool of 11: %v", err)
	}
	enough := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", PoolSize: 12})
	defer enough.Close()
	if _, err := consumer.New(enough, "orders", "g", h, consumer.WithPartitions(midstream.Partitions{Count: 4})); err != nil {
		t.Fatalf("4 partitions on a pool of 12: %v", err)
	}
}
