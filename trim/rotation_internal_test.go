package trim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
)

func TestRotation(t *testing.T) {
	mr := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer c.Close()
	ctx := context.Background()

	r := rotation{client: c, names: []string{"a", "b", "c", "d", "e"}}
	for i, want := range [][]string{{"a", "b"}, {"c", "d"}, {"e"}, {"a", "b"}} {
		got, end, err := r.next(ctx, 2)
		if err != nil || !slices.Equal(got, want) || end != (i == 2) {
			t.Fatalf("tick %d: %v %v %v, want %v", i, got, end, err, want)
		}
	}

	for i := range 5 {
		c.XAdd(ctx, &redis.XAddArgs{Stream: fmt.Sprintf("p:%d", i), Values: []string{"k", "v"}})
	}
	c.Set(ctx, "p:string", "x", 0)
	r = rotation{client: c, names: []string{"p:0", "x"}, pattern: "p:*"}
	var all []string
	for tick := 0; ; tick++ {
		got, end, err := r.next(ctx, 3)
		if err != nil || len(got) > 3 {
			t.Fatalf("tick %d: %v %v", tick, got, err)
		}
		if len(slices.Compact(slices.Sorted(slices.Values(got)))) != len(got) {
			t.Fatalf("tick %d visits a stream twice: %v", tick, got)
		}
		all = append(all, got...)
		if end {
			break
		}
		if tick == 10 {
			t.Fatal("the cycle never ends")
		}
	}
	// Every stream once, a name SCAN also finds at most twice (never twice
	// in one tick), and no other key.
	slices.Sort(all)
	if set := slices.Compact(slices.Clone(all)); !slices.Equal(set, []string{"p:0", "p:1", "p:2", "p:3", "p:4", "x"}) || len(all) > 7 {
		t.Fatalf("one cycle visited %v", all)
	}
	// The next cycle starts over with the names.
	if got, _, _ := r.next(ctx, 2); !slices.Equal(got, []string{"p:0", "x"}) {
		t.Fatalf("next cycle: %v", got)
	}
}

// TestRotationRequeue: streams a tick did not visit come first next time,
// without repeats within a call.
func TestRotationRequeue(t *testing.T) {
	ctx := context.Background()
	r := rotation{names: []string{"a", "b", "c", "d", "e"}}
	got, _, _ := r.next(ctx, 3)
	if !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("first: %v", got)
	}
	r.requeue("c", "a")
	for i, want := range [][]string{{"c", "a", "d"}, {"e"}, {"a", "b", "c"}} {
		if got, _, _ := r.next(ctx, 3); !slices.Equal(got, want) {
			t.Fatalf("call %d: %v, want %v", i, got, want)
		}
	}
}

// TestRotationHealsAfterFailover: the case. A Trimmer with a
// pattern on a cluster kept the node list of its SCAN cycle; after a master
// died, the cluster client closed that node's client, and every SCAN of
// it failed with "redis: client is closed", forever. Now the nodes are
// listed afresh on every call: the one that left is dropped, and its
// replacement is scanned from the start.
func TestRotationHealsAfterFailover(t *testing.T) {
	ctx := context.Background()
	server := func(keys ...string) *redis.Client {
		mr := miniredis.RunT(t)
		c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { c.Close() })
		for _, k := range keys {
			c.XAdd(ctx, &redis.XAddArgs{Stream: k, Values: []string{"k", "v"}})
		}
		return c
	}
	a := server("p:a1", "p:a2", "p:a3")
	a2 := server("p:a1", "p:a2", "p:a3") // a's replica, promoted
	b := server("p:b1")
	// The cluster client's view: a and b, then b and a2 (a is gone, its
	// client closed).
	view := []node{{"a", a}, {"b", b}}
	r := rotation{pattern: "p:*", list: func(context.Context, redis.UniversalClient) ([]node, error) {
		return slices.Clone(view), nil
	}}
	got, _, err := r.next(ctx, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("first call: %v %v", got, err)
	}
	// a dies while its SCAN is under way (at cursor 7, say); a2 takes
	// over and its client replaces a's in the cluster client's view.
	r.done, r.node, r.cursor, r.found = nil, "a", 7, nil
	a.Close()
	view = []node{{"a2", a2}, {"b", b}}
	var all []string
	for call := 0; ; call++ {
		got, end, err := r.next(ctx, 2)
		if err != nil {
			t.Fatalf("call %d: %v", call, err)
		}
		all = append(all, got...)
		if end {
			break
		}
		if call == 10 {
			t.Fatal("the cycle never ends")
		}
	}
	slices.Sort(all)
	if want := []string{"p:a1", "p:a2", "p:a3", "p:b1"}; !slices.Equal(all, want) {
		t.Fatalf("after the failover the cycle visited %v, want %v", all, want)
	}

	// With the stale list of before (the closed client still listed), SCAN
	// fails with a Topology error, and heals as soon as the list is
	// current.
	view = []node{{"a", a}, {"b", b}}
	if _, _, err := r.next(ctx, 10); !errors.Is(err, redis.ErrClosed) {
		t.Fatalf("SCAN on a closed client: %v", err)
	}
	view = []node{{"a2", a2}, {"b", b}}
	got, _, err = r.next(ctx, 10)
	if err != nil || len(got) == 0 {
		t.Fatalf("after the view is current: %v %v", got, err)
	}
}

func TestRotationPartitioned(t *testing.T) {
	mr := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer c.Close()
	ctx := context.Background()

	r := rotation{client: c, names: []string{"x"}, partitioned: []string{"orders", "later"}}
	// No layout stored yet: only the named stream.
	if got, end, err := r.next(ctx, 10); err != nil || !end || !slices.Equal(got, []string{"x"}) {
		t.Fatalf("before any layout: %v %v %v", got, end, err)
	}
	orders, err := midstream.EnsurePartitions(ctx, c, "orders", midstream.Partitions{Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	// The next cycle reads the layout: the named stream, then the partitions.
	want := append([]string{"x"}, orders...)
	var got []string
	for tick := 0; ; tick++ {
		part, end, err := r.next(ctx, 2)
		if err != nil || len(part) > 2 {
			t.Fatalf("tick %d: %v %v", tick, part, err)
		}
		got = append(got, part...)
		if end {
			break
		}
		if tick == 10 {
			t.Fatal("the cycle never ends")
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("cycle: %v, want %v", got, want)
	}
	later, err := midstream.EnsurePartitions(ctx, c, "later", midstream.Partitions{Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got, end, err := r.next(ctx, 10); err != nil || !end || !slices.Equal(got, append(want, later...)) {
		t.Fatalf("after a second layout: %v %v %v", got, end, err)
	}
	// A bad layout is an error of that cycle, retried by the next.
	c.HSet(ctx, midstream.PartitionLayoutKey("orders"), "count", "x")
	if _, _, err := r.next(ctx, 10); !errors.Is(err, midstream.ErrPartitionLayout) {
		t.Fatalf("bad layout: %v", err)
	}
	c.HSet(ctx, midstream.PartitionLayoutKey("orders"), "count", "3")
	if got, end, err := r.next(ctx, 10); err != nil || !end || len(got) != 6 {
		t.Fatalf("layout repaired: %v %v %v", got, end, err)
	}
}

// TestRotationSkipsUnreachableNode: a node whose SCAN keeps failing (a
// master down with no replica to take over, as on a cluster with
// cluster-require-full-coverage no, or one frozen) must not keep the
// streams of the other nodes from being found: each call reports the
// failure, and the cycle goes on with the next node.
func TestRotationSkipsUnreachableNode(t *testing.T) {
	ctx := context.Background()
	server := func(keys ...string) *redis.Client {
		mr := miniredis.RunT(t)
		c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { c.Close() })
		for _, k := range keys {
			c.XAdd(ctx, &redis.XAddArgs{Stream: k, Values: []string{"k", "v"}})
		}
		return c
	}
	dead := server("p:a1")
	dead.Close()
	b := server("p:b1", "p:b2")
	r := rotation{pattern: "p:*", list: func(context.Context, redis.UniversalClient) ([]node, error) {
		return []node{{"a", dead}, {"b", b}}, nil
	}}
	var all []string
	failures := 0
	for call := 0; call < 10; call++ {
		got, _, err := r.next(ctx, 10)
		if err != nil {
			if !errors.Is(err, redis.ErrClosed) {
				t.Fatalf("call %d: %v", call, err)
			}
			failures++
		}
		all = append(all, got...)
	}
	if failures == 0 {
		t.Fatal("the failed SCAN was never reported")
	}
	slices.Sort(all)
	if all = slices.Compact(all); !slices.Equal(all, []string{"p:b1", "p:b2"}) {
		t.Fatalf("with node a unreachable, ten calls found %v, want b's streams", all)
	}
}

// A SCAN that fails on the only node left to scan (a single server) keeps
// its cursor: the next call goes on from there rather than starting the
// cycle over, so streams late in a large keyspace are still reached when
// SCANs fail now and then.
func TestRotationKeepsCursorOfOnlyNode(t *testing.T) {
	ctx := context.Background()
	mr := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { c.Close() })
	c.XAdd(ctx, &redis.XAddArgs{Stream: "p:a", Values: []string{"k", "v"}})
	r := rotation{pattern: "p:*", list: func(context.Context, redis.UniversalClient) ([]node, error) {
		return []node{{"a", c}}, nil
	}}
	r.node, r.cursor = "a", 7 // part way through the node's keys
	mr.SetError("BUSY Redis is busy running a script")
	if _, _, err := r.next(ctx, 10); err == nil {
		t.Fatal("the failed SCAN was not reported")
	}
	if r.node != "a" || r.cursor != 7 || r.done["a"] {
		t.Fatalf("after a failed SCAN of the only node: node %q, cursor %d, done %v; want it kept at cursor 7", r.node, r.cursor, r.done)
	}
}
