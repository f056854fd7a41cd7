package producer_test

import (
	"context"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/producer"
)

// constCodec returns the same pairs for every value instead of appending to
// dst: the producer must leave that slice alone.
type constCodec struct{ pairs []string }

func (c constCodec) Encode([]string, struct{}) ([]string, error) { return c.pairs, nil }
func (c constCodec) Decode(map[string]string, *struct{}) error   { return nil }

// TestPooledBufferLeavesCodecMemory: the buffer the codec encodes into is
// pooled, but a slice the codec returns of its own is never cleared.
func TestPooledBufferLeavesCodecMemory(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	c := constCodec{pairs: []string{"kind", "ping"}}
	p, err := producer.New[struct{}](rdb, "s", producer.WithCodec[struct{}](c), producer.WithoutCoalescing())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 3 {
		if _, err := p.Publish(ctx, struct{}{}); err != nil {
			t.Fatal(err)
		}
	}
	if c.pairs[0] != "kind" || c.pairs[1] != "ping" {
		t.Errorf("the codec's own pairs after publishing: %q", c.pairs)
	}
	msgs, err := rdb.XRange(ctx, "s", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if len(m.Values) != 1 || m.Values["kind"] != "ping" {
			t.Errorf("entry %s has %v, want kind=ping", m.ID, m.Values)
		}
	}
}
