package redistest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

// TestClusterFailover starts a cluster (the shared one on the cluster
// backend, else one of its own), spreads keys over every master, kills the
// master of one key and checks that its replica took over with a write that
// had reached it (WAIT), then that Heal brings the cluster back to three
// masters with a replica each.
func TestClusterFailover(t *testing.T) {
	c := shared
	if c == nil {
		if binary() == "" && os.Getenv(EnvRequire) != "1" {
			t.Skip("redistest: no redis-server on PATH")
		}
		var err error
		if c, err = startCluster(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := c.close(); err != nil {
				t.Error(err)
			}
		})
	}
	ctx := context.Background()
	if err := c.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	rdb := c.NewClient()
	defer rdb.Close()
	masters := map[string]bool{}
	for _, k := range []string{"{a}", "{b}", "{c}", "{d}", "{e}", "{f}", "{g}"} {
		addr, err := c.MasterOf(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		masters[addr] = true
	}
	if len(masters) != clusterMasters {
		t.Fatalf("7 keys on %d masters, want %d", len(masters), clusterMasters)
	}

	key := "{failover}"
	if err := rdb.Set(ctx, key, "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	old, err := c.MasterOf(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	m := redis.NewClient(&redis.Options{Addr: old})
	defer m.Close()
	if n, err := m.Wait(ctx, 1, 5000).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 = %d, %v", n, err)
	}
	start := time.Now()
	if _, err := c.KillMasterOf(ctx, key); err != nil {
		t.Fatal(err)
	}
	promoted, err := c.WaitFailover(ctx, key, old)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("failover from %s to %s in %s", old, promoted, time.Since(start).Round(time.Millisecond))
	p := redis.NewClient(&redis.Options{Addr: promoted})
	defer p.Close()
	if got, err := p.Get(ctx, key).Result(); err != nil || got != "v" {
		t.Fatalf("GET on the promoted replica = %q, %v", got, err)
	}
	if err := c.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	r := redis.NewClient(&redis.Options{Addr: old})
	defer r.Close()
	if role, err := r.Do(ctx, "ROLE").Slice(); err != nil || role[0] != "slave" {
		t.Fatalf("restarted old master: ROLE = %v, %v; want a replica", role, err)
	}
}
