package producer

import (
	"context"
	"errors"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
)

// Once a recheck finds another layout stored, every publish fails, not
// only those that make the check: a publish arriving while another call
// checks again must not write to the partitions of the old layout.
func TestPartitionedLayoutChangeFailsEveryPublish(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	p, err := New[map[string]string](rdb, "orders", WithPartitions(midstream.Partitions{Count: 2}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(ctx, map[string]string{"k": "1"}); err != nil {
		t.Fatal(err)
	}
	// The layout key is lost, and another producer stores another count.
	mr.Del(midstream.PartitionLayoutKey("orders"))
	if _, err := midstream.EnsurePartitions(ctx, rdb, "orders", midstream.Partitions{Count: 3}); err != nil {
		t.Fatal(err)
	}
	p.part.epoch = p.part.epoch.Add(-2 * layoutRecheck) // the recheck is due
	if _, err := p.Publish(ctx, map[string]string{"k": "2"}); !errors.Is(err, midstream.ErrPartitionLayout) {
		t.Fatalf("publish after the layout changed: %v", err)
	}
	lens := func() (n int64) {
		for _, k := range p.Partitions() {
			l, _ := rdb.XLen(ctx, k).Result()
			n += l
		}
		return n
	}
	before := lens()
	p.part.check <- struct{}{} // another call checks the layout again
	defer func() { <-p.part.check }()
	if _, err := p.Publish(ctx, map[string]string{"k": "3"}); !errors.Is(err, midstream.ErrPartitionLayout) {
		t.Fatalf("publish while another call checks: %v", err)
	}
	if _, err := p.PublishBatch(ctx, []map[string]string{{"k": "4"}}); !errors.Is(err, midstream.ErrPartitionLayout) {
		t.Fatalf("batch while another call checks: %v", err)
	}
	if after := lens(); after != before {
		t.Fatalf("%d entries written to the old layout", after-before)
	}
}
