package producer

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync/atomic"
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

// layoutDown fails the commands that read or store the layout of stream
// (on a cluster, its node down), and counts them.
type layoutDown struct {
	stream string
	calls  atomic.Int64
}

func (h *layoutDown) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *layoutDown) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		for _, a := range cmd.Args() {
			if s, ok := a.(string); ok && (s == h.stream || s == midstream.PartitionLayoutKey(h.stream)) {
				h.calls.Add(1)
				err := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("layout node down")}
				cmd.SetErr(err)
				return err
			}
		}
		return next(ctx, cmd)
	}
}

func (h *layoutDown) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A recheck of the layout that cannot reach the layout's node is not tried
// again on the way of every publish: publishes to partitions that can be
// reached are not held up by it, one after the other.
func TestPartitionedRecheckFailureNotRetriedEveryPublish(t *testing.T) {
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
	down := &layoutDown{stream: "orders"}
	rdb.AddHook(down)
	p.part.epoch = p.part.epoch.Add(-2 * layoutRecheck) // the recheck is due
	for i := range 20 {
		if _, err := p.Publish(ctx, map[string]string{"k": strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := down.calls.Load(); n != 1 {
		t.Fatalf("20 publishes sent %d layout commands to the node that is down, want 1", n)
	}
}

// A layout found different stays refused while the rechecks that follow
// cannot reach Redis.
func TestPartitionedLayoutMismatchOutlivesFailedRecheck(t *testing.T) {
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
	mr.Del(midstream.PartitionLayoutKey("orders"))
	if _, err := midstream.EnsurePartitions(ctx, rdb, "orders", midstream.Partitions{Count: 3}); err != nil {
		t.Fatal(err)
	}
	p.part.epoch = p.part.epoch.Add(-2 * layoutRecheck)
	if _, err := p.Publish(ctx, map[string]string{"k": "2"}); !errors.Is(err, midstream.ErrPartitionLayout) {
		t.Fatalf("publish after the layout changed: %v", err)
	}
	rdb.AddHook(&layoutDown{stream: "orders"})
	for i := range 3 {
		if _, err := p.Publish(ctx, map[string]string{"k": "3"}); !errors.Is(err, midstream.ErrPartitionLayout) {
			t.Fatalf("publish %d while the layout cannot be read: %v", i, err)
		}
	}
}

// A producer without partitions that runs while its stream's name becomes
// the logical name of a partitioned stream finds out at its next recheck
// and refuses every publish from then on (the recheck's caller and the
// others alike), until the layout is gone again; between rechecks it
// sends no check at all.
func TestPlainProducerRechecksLayout(t *testing.T) {
	mr := miniredis.RunT(t)
	var exists atomic.Int64
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	rdb.AddHook(countHook{name: "exists", n: &exists})
	ctx := context.Background()
	p, err := New[map[string]string](rdb, "orders")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := p.Publish(ctx, map[string]string{"i": strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := exists.Load(); n != 1 {
		t.Fatalf("5 publishes sent %d layout checks, want 1", n)
	}
	// The plain stream is drained and removed, and partitions set up.
	mr.Del("orders")
	if _, err := midstream.EnsurePartitions(ctx, rdb, "orders", midstream.Partitions{Count: 2}); err != nil {
		t.Fatal(err)
	}
	p.plainNext.Store(1) // the recheck is due
	if _, err := p.Publish(ctx, map[string]string{"k": "after"}); !errors.Is(err, midstream.ErrPartitionLayout) {
		t.Fatalf("publish at the recheck: %v, want ErrPartitionLayout", err)
	}
	if _, err := p.Publish(ctx, map[string]string{"k": "after"}); !errors.Is(err, midstream.ErrPartitionLayout) {
		t.Fatalf("publish after the recheck: %v, want ErrPartitionLayout", err)
	}
	if _, err := p.PublishBatch(ctx, []map[string]string{{"k": "b"}}); !errors.Is(err, midstream.ErrPartitionLayout) {
		t.Fatalf("batch after the recheck: %v, want ErrPartitionLayout", err)
	}
	if mr.Exists("orders") {
		t.Fatal("a refused publish wrote the logical name")
	}
	// The layout removed: the next recheck lets it publish again.
	mr.Del(midstream.PartitionLayoutKey("orders"))
	p.plainNext.Store(1)
	if _, err := p.Publish(ctx, map[string]string{"k": "again"}); err != nil {
		t.Fatalf("publish after the layout was removed: %v", err)
	}
}

// countHook counts the commands named name.
type countHook struct {
	name string
	n    *atomic.Int64
}

func (h countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == h.name {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if cmd.Name() == h.name {
				h.n.Add(1)
			}
		}
		return next(ctx, cmds)
	}
}
