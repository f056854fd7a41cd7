package integration

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/feed"
	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/internal/redisserver"
	"github.com/midstream-go/midstream/live"
	"github.com/midstream-go/midstream/notify"
)

// startCluster starts a Redis Cluster of three masters on loopback ports,
// the slots split between them. Like any cluster it refuses a script or a
// transaction over keys of several slots (CROSSSLOT), and a script touching
// an undeclared key that another node serves.
func startCluster(t *testing.T) *redis.ClusterClient {
	t.Helper()
	if redisserver.Binary() == "" {
		if os.Getenv(redistest.EnvRequire) == "1" {
			t.Fatal("no redis-server on PATH")
		}
		t.Skip("no redis-server on PATH")
	}
	ctx := context.Background()
	var addrs, buses []string
	var nodes []*redis.Client
	for i := range 3 {
		dir := t.TempDir()
		bus, err := redisserver.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		srv, err := redisserver.Start(redisserver.Config{Dir: dir, Args: []string{"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--cluster-port", strconv.Itoa(bus)}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Close() })
		node := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		t.Cleanup(func() { _ = node.Close() })
		lo, hi := i*16384/3, (i+1)*16384/3-1
		if err := node.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, srv.Addr())
		buses = append(buses, strconv.Itoa(bus))
		nodes = append(nodes, node)
	}
	for i, a := range addrs[1:] {
		host, port, _ := strings.Cut(a, ":")
		if err := nodes[0].Do(ctx, "CLUSTER", "MEET", host, port, buses[i+1]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, node := range nodes {
		for !strings.Contains(node.ClusterInfo(ctx).Val(), "cluster_state:ok") {
			if time.Now().After(deadline) {
				t.Fatal("the cluster did not come up within 30s")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { _ = c.Close() })
	// The checks are real: a script over two slots is refused, and so is a
	// script touching undeclared keys served by other nodes.
	err := c.Eval(ctx, "return redis.call('SET', KEYS[1], 1) and redis.call('SET', KEYS[2], 1)", []string{"a", "b"}).Err()
	if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("a two-slot script on the cluster: %v, want CROSSSLOT", err)
	}
	refused := 0
	for i := range 10 {
		if c.Eval(ctx, "return redis.call('SET', ARGV[1], 1)", []string{"a"}, "k"+strconv.Itoa(i)).Err() != nil {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("no script touching undeclared keys was refused")
	}
	return c
}

// clusterUsers are user IDs without a hash tag, with one, and with braces
// that make no tag.
var clusterUsers = []string{"123", "ann", "{tag}", "a{b}c", "x}y", "u:read", "{}"}

// TestClusterFeed: following, appending with fan-out on write (backfill,
// retries), reading and live delivery on a cluster, for any user ID.
func TestClusterFeed(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f, err := feed.New(c, feed.WithFanOutOnWrite(1000), feed.WithBackfill(3), feed.WithFanOutBatch(2))
	if err != nil {
		t.Fatal(err)
	}
	star := "star"
	first, err := f.Append(ctx, star, map[string]string{"n": "0"})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range clusterUsers {
		if err := f.Follow(ctx, u, star); err != nil {
			t.Fatalf("Follow(%q): %v", u, err)
		}
	}
	sub, err := f.Live(ctx, "123", live.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var ids []string
	for i := 1; i <= 5; i++ {
		id, err := f.Append(ctx, star, map[string]string{"n": strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := f.FanOut(ctx, ids[2]); err != nil {
		t.Fatal(err)
	}
	followers, err := f.Followers(ctx, star)
	if err != nil || len(followers) != len(clusterUsers) {
		t.Fatalf("Followers = %v, %v", followers, err)
	}
	want := append(slices.Clone(ids), first)
	slices.Reverse(want[:5])
	for _, u := range clusterUsers {
		var got []string
		for p, err := range f.Pages(ctx, u, "", 4) {
			if err != nil {
				t.Fatalf("%q: %v", u, err)
			}
			for _, e := range p.Items {
				got = append(got, e.ID)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%q's feed = %v, want %v", u, got, want)
		}
		if err := f.Unfollow(ctx, u, star); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case e := <-sub.C():
		if e.ID != ids[0] {
			t.Fatalf("live: %s, want %s", e.ID, ids[0])
		}
	case <-ctx.Done():
		t.Fatal("no live activity")
	}
}

// TestClusterNotify: every notify call on a cluster, for user IDs with and
// without hash tags.
func TestClusterNotify(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	n, err := notify.New(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range clusterUsers {
		a, err := n.Send(ctx, u, "a", notify.WithIdempotencyKey("k"), notify.WithFields(map[string]string{"kind": "x"}))
		if err != nil {
			t.Fatalf("Send(%q): %v", u, err)
		}
		if again, err := n.Send(ctx, u, "a", notify.WithIdempotencyKey("k")); err != nil || again != a {
			t.Fatalf("repeated Send(%q) = %s, %v; want %s", u, again, err, a)
		}
		b, err := n.Send(ctx, u, "b")
		if err != nil {
			t.Fatal(err)
		}
		// The article's client marks b read.
		if err := c.XAdd(ctx, &redis.XAddArgs{Stream: n.Stream(u), Values: []string{"markedReadId", b, "readAt", "1"}}).Err(); err != nil {
			t.Fatal(err)
		}
		if cnt, err := n.UnreadCount(ctx, u); err != nil || cnt != 1 {
			t.Fatalf("UnreadCount(%q) = %d, %v; want 1", u, cnt, err)
		}
		if err := n.Sync(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := n.MarkRead(ctx, u, a); err != nil {
			t.Fatalf("MarkRead(%q): %v", u, err)
		}
		if p, err := n.Unread(ctx, u, "", 10); err != nil || len(p.Items) != 0 {
			t.Fatalf("Unread(%q) = %+v, %v", u, p, err)
		}
		if _, err := n.Send(ctx, u, "c"); err != nil {
			t.Fatal(err)
		}
		if err := n.MarkAllRead(ctx, u); err != nil {
			t.Fatalf("MarkAllRead(%q): %v", u, err)
		}
		p, err := n.List(ctx, u, "", 10)
		if err != nil || len(p.Items) != 3 {
			t.Fatalf("List(%q) = %+v, %v", u, p, err)
		}
		for _, nt := range p.Items {
			if !nt.Read {
				t.Fatalf("%q: %s unread after MarkAllRead", u, nt.ID)
			}
		}
		if got := articleUnread(t, c, n.Stream(u)); len(got) != 0 {
			t.Fatalf("%q: the article sees %v unread", u, got)
		}
	}
	// The earlier layout's state, on a cluster (a tagged user kept it in
	// the stream's slot), is brought over.
	u := "{old}"
	s := n.Stream(u)
	id, err := c.XAdd(ctx, &redis.XAddArgs{Stream: s, Values: []string{"content", "x", "read", "false", "createdAt", "1"}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.XAdd(ctx, &redis.XAddArgs{Stream: s, Values: []string{"content", "y", "read", "false", "createdAt", "1"}}).Result(); err != nil {
		t.Fatal(err)
	}
	c.Set(ctx, s+":read-upto", id, 0)
	if cnt, err := n.UnreadCount(ctx, u); err != nil || cnt != 1 {
		t.Fatalf("UnreadCount over the earlier layout = %d, %v", cnt, err)
	}
	if err := n.Sync(ctx, u); err != nil {
		t.Fatal(err)
	}
	if c.Exists(ctx, s+":read-upto").Val() != 0 {
		t.Fatal("the earlier watermark key is still there")
	}
	if cnt, err := n.UnreadCount(ctx, u); err != nil || cnt != 1 {
		t.Fatalf("UnreadCount after the migration = %d, %v", cnt, err)
	}
}
