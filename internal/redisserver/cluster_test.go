package redisserver

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestStartCluster starts a cluster of three masters without replicas,
// checks that the three split the slots and serve keys of every slot range,
// and that Close stops every node.
func TestStartCluster(t *testing.T) {
	if Binary() == "" {
		if os.Getenv("MIDSTREAM_REQUIRE_REDIS") == "1" {
			t.Fatal("no redis-server on PATH")
		}
		t.Skip("no redis-server on PATH")
	}
	c, err := StartCluster(ClusterConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = c.Close()
		}
	})
	if len(c.Nodes) != 3 {
		t.Fatalf("%d nodes, want 3", len(c.Nodes))
	}
	ctx := context.Background()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	defer rdb.Close()
	shards, err := rdb.ClusterShards(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	masters := map[string]int{}
	for _, sh := range shards {
		for _, r := range sh.Slots {
			masters[sh.Nodes[0].Endpoint+":"+fmt.Sprint(sh.Nodes[0].Port)] += int(r.End-r.Start) + 1
		}
	}
	if len(masters) != 3 {
		t.Fatalf("slots on %d masters, want 3: %v", len(masters), masters)
	}
	total := 0
	for _, n := range masters {
		total += n
	}
	if total != 16384 {
		t.Fatalf("%d slots served, want 16384", total)
	}
	for i := range 30 {
		k := fmt.Sprintf("k%d", i)
		if err := rdb.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if got, err := rdb.Get(ctx, k).Int(); err != nil || got != i {
			t.Fatalf("GET %s = %d, %v; want %d", k, got, err, i)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	for _, n := range c.Nodes {
		if n.Running() {
			t.Errorf("%s still runs after Close", n.Addr())
		}
	}
}

func TestStartClusterBadConfig(t *testing.T) {
	for name, cfg := range map[string]ClusterConfig{
		"no dir":            {Binary: "/bin/true"},
		"two masters":       {Binary: "/bin/true", Dir: t.TempDir(), Masters: 2},
		"negative replicas": {Binary: "/bin/true", Dir: t.TempDir(), Replicas: -1},
	} {
		if c, err := StartCluster(cfg); err == nil {
			_ = c.Close()
			t.Errorf("%s: no error", name)
		}
	}
}
