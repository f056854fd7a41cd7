package producer_test

import (
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/producer"
)

// TestProducerDurableOptions: out-of-range settings and a Ring are refused.
func TestProducerDurableOptions(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	for _, o := range []producer.Option{
		producer.WithDurable(0, time.Second),
		producer.WithDurable(producer.MaxDurableReplicas+1, time.Second),
		producer.WithDurable(1, 0),
		producer.WithDurable(1, producer.MaxDurableTimeout+time.Millisecond),
		producer.WithDurable(1, 1500*time.Microsecond),
	} {
		if _, err := producer.New[map[string]string](rdb, "s", o); !errors.Is(err, midstream.ErrInvalidOption) {
			t.Errorf("New with an out-of-range WithDurable: %v", err)
		}
	}
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	defer ring.Close()
	if _, err := producer.New[map[string]string](ring, "s", producer.WithDurable(1, time.Second)); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Errorf("New with WithDurable on a Ring: %v", err)
	}
}
