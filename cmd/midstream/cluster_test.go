package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/internal/ops"
	"github.com/midstream-go/midstream/internal/redisserver"
)

// startCluster starts a Redis Cluster of three masters (no replicas) on
// loopback and returns their addresses.
func startCluster(t *testing.T) []string {
	t.Helper()
	if redisserver.Binary() == "" {
		if os.Getenv(redistest.EnvRequire) == "1" {
			t.Fatalf("%s=1 but there is no redis-server on PATH", redistest.EnvRequire)
		}
		t.Skip("no redis-server on PATH")
	}
	ctx := context.Background()
	var addrs []string
	var nodes []*redis.Client
	for i := range 3 {
		bus, err := redisserver.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		srv, err := redisserver.Start(redisserver.Config{Dir: t.TempDir(),
			Args: []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", fmt.Sprint(bus)}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Close() })
		c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		t.Cleanup(func() { c.Close() })
		lo, hi := i*16384/3, (i+1)*16384/3-1
		if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			host, port, _ := strings.Cut(srv.Addr(), ":")
			if err := nodes[0].Do(ctx, "CLUSTER", "MEET", host, port, bus).Err(); err != nil {
				t.Fatal(err)
			}
		}
		addrs = append(addrs, srv.Addr())
		nodes = append(nodes, c)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ok := true
		for _, c := range nodes {
			info, err := c.ClusterInfo(ctx).Result()
			ok = ok && err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:3")
		}
		if ok {
			return addrs
		}
		if time.Now().After(deadline) {
			t.Fatal("the cluster did not come up")
		}
	}
}

// TestCLICluster: streams in every master's slots are listed (SCAN on
// each master), inspected, redriven and tailed through --cluster.
func TestCLICluster(t *testing.T) {
	addrs := startCluster(t)
	ctx := context.Background()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer rdb.Close()
	var streams []string
	masters := map[string]bool{}
	for _, tag := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		s := "{" + tag + "}"
		streams = append(streams, s)
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: s, Values: []string{"tag", tag}}).Err(); err != nil {
			t.Fatal(err)
		}
		rdb.XGroupCreate(ctx, s, "g", "0")
		n, err := rdb.MasterForKey(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		masters[n.Options().Addr] = true
	}
	if len(masters) < 2 {
		t.Fatalf("the streams live on %d master(s)", len(masters))
	}
	run := func(v any, args ...string) {
		t.Helper()
		out, errOut, code := cli(t, "", "", append(args, "--output", "json")...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		if err := jsonDecode(out, v); err != nil {
			t.Fatalf("%v: %v in %s", args, err, out)
		}
	}
	seed := "--cluster=" + addrs[1]
	var list streamsOutput
	run(&list, seed, "streams")
	var got []string
	for _, s := range list.Streams {
		got = append(got, s.Stream)
		if s.Length != 1 || s.Groups != 1 || s.Lag == nil || *s.Lag != 1 {
			t.Fatalf("summary %+v", s)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(streams) {
		t.Fatalf("streams %v, want %v", got, streams)
	}

	var d ops.StreamDetail
	run(&d, seed, "stream", "{e}")
	if d.Health.Stream != "{e}" || len(d.Health.Groups) != 1 || d.Trim.Removable != 0 {
		t.Fatalf("stream {e}: %+v", d)
	}

	// A dead letter in {h}'s slot goes back in one script.
	rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "w", Streams: []string{"{h}", ">"}})
	first := rdb.XRange(ctx, "{h}", "-", "+").Val()[0]
	q, err := deadletter.New(rdb, "{h}")
	if err != nil {
		t.Fatal(err)
	}
	if moved, err := q.Move(ctx, deadletter.MoveRequest{ID: first.ID, Fields: map[string]string{"tag": "h"}, Group: "g", Consumer: "w", Reason: "x"}); !moved || err != nil {
		t.Fatalf("move: %v %v", moved, err)
	}
	var ch dlqChangeOutput
	run(&ch, seed, "dlq", "redrive", "{h}", "--yes")
	side := deadletter.RedriveKey("{h}", "g") // back to group g only
	if ch.Redrive == nil || ch.Redrive.Redriven != 1 || rdb.XLen(ctx, "{h}").Val() != 1 || rdb.XLen(ctx, side).Val() != 1 {
		t.Fatalf("redrive: %+v", ch)
	}
	var e ops.Entry
	run(&e, seed, "tail", side, "--from", first.ID, "--count", "1")
	if e.Fields["tag"] != "h" || e.ID == first.ID {
		t.Fatalf("tail: %+v", e)
	}
}
