package rediserr_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/internal/rediserr"
	"github.com/midstream-go/midstream/internal/redisserver"
)

// startServer starts a redis-server of the test's own, or skips (fails
// with MIDSTREAM_REQUIRE_REDIS=1) when there is none.
func startServer(t *testing.T) *redisserver.Server {
	t.Helper()
	if redisserver.Binary() == "" {
		if os.Getenv("MIDSTREAM_REQUIRE_REDIS") == "1" {
			t.Fatal("no redis-server on PATH")
		}
		t.Skip("no redis-server on PATH")
	}
	srv, err := redisserver.Start(redisserver.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// TestClassifyRealErrors classifies the errors go-redis returns from a real
// server (and from none), as the loops see them.
func TestClassifyRealErrors(t *testing.T) {
	srv := startServer(t)
	ctx := context.Background()
	client := func(o redis.Options) *redis.Client {
		o.Addr, o.MaxRetries = srv.Addr(), -1
		c := redis.NewClient(&o)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	admin := client(redis.Options{})
	for _, cmd := range [][]any{
		{"SET", "str", "x"},
		{"XADD", "s", "*", "k", "v"},
		{"ACL", "SETUSER", "noxtrim", "on", ">pw", "~*", "&*", "+@all", "-xtrim"},
		{"ACL", "SETUSER", "noeval", "on", ">pw", "~*", "&*", "+@all", "-eval", "-evalsha"},
		{"ACL", "SETUSER", "nokey", "on", ">pw", "~other*", "&*", "+@all"},
	} {
		if err := admin.Do(ctx, cmd...).Err(); err != nil {
			t.Fatalf("%v: %v", cmd, err)
		}
	}
	as := func(user string) *redis.Client { return client(redis.Options{Username: user, Password: "pw"}) }
	xtrim := redis.NewScript(`return redis.call('XTRIM', KEYS[1], 'MAXLEN', 0)`)
	xlen := redis.NewScript(`return redis.call('XLEN', KEYS[1])`)
	closed := client(redis.Options{})
	_ = closed.Close()
	port, err := redisserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	nobody := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), MaxRetries: -1})
	defer nobody.Close()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()

	cases := []struct {
		name string
		run  func() error
		want rediserr.Class
	}{
		{"script running a command the user may not", func() error { return xtrim.Run(ctx, as("noxtrim"), []string{"s"}).Err() }, rediserr.Config},
		{"user may not run scripts", func() error { return xtrim.Run(ctx, as("noeval"), []string{"s"}).Err() }, rediserr.Config},
		{"user may not access the key", func() error { return as("nokey").XLen(ctx, "s").Err() }, rediserr.Config},
		{"script on a key the user may not access", func() error { return xlen.Run(ctx, as("nokey"), []string{"s"}).Err() }, rediserr.Config},
		{"wrong password", func() error { return client(redis.Options{Username: "noeval", Password: "nope"}).Ping(ctx).Err() }, rediserr.Config},
		{"WRONGTYPE", func() error { return admin.XLen(ctx, "str").Err() }, rediserr.Config},
		{"WRONGTYPE in a script", func() error { return xlen.Run(ctx, admin, []string{"str"}).Err() }, rediserr.Config},
		{"unknown command", func() error { return admin.Do(ctx, "XBOGUS", "s").Err() }, rediserr.Config},
		{"unknown subcommand", func() error { return admin.Do(ctx, "XINFO", "BOGUS", "s").Err() }, rediserr.Config},
		{"NOGROUP", func() error {
			return admin.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{"s", ">"}, Block: -1}).Err()
		}, rediserr.NoGroup},
		{"NOSCRIPT", func() error { return admin.EvalSha(ctx, "0000000000000000000000000000000000000000", nil).Err() }, rediserr.Transient},
		{"OOM", func() error {
			admin.ConfigSet(ctx, "maxmemory", "1")
			defer admin.ConfigSet(ctx, "maxmemory", "0")
			return admin.Set(ctx, "k", "v", 0).Err()
		}, rediserr.Transient},
		{"read timeout", func() error {
			admin.Do(ctx, "CLIENT", "PAUSE", "300", "ALL")
			return client(redis.Options{ReadTimeout: 50 * time.Millisecond}).Ping(ctx).Err()
		}, rediserr.Topology}, // a node that stopped answering (go-redis hands over a bare *poll.DeadlineExceededError)
		{"closed client", func() error { return closed.Ping(ctx).Err() }, rediserr.Topology},
		{"connection refused", func() error { return nobody.Ping(ctx).Err() }, rediserr.Topology},
		{"connection killed mid-command", func() error {
			c := client(redis.Options{PoolSize: 1})
			id, err := c.ClientID(ctx).Result()
			if err != nil {
				return err
			}
			done := make(chan error, 1)
			go func() { done <- c.BLPop(ctx, 10*time.Second, "nothing").Err() }()
			for !strings.Contains(admin.Do(ctx, "CLIENT", "LIST", "ID", fmt.Sprint(id)).String(), "cmd=blpop") {
				time.Sleep(5 * time.Millisecond)
			}
			if err := admin.ClientKillByFilter(ctx, "ID", fmt.Sprint(id)).Err(); err != nil {
				return err
			}
			return <-done
		}, rediserr.Topology},
		{"cancelled ctx", func() error { return admin.Ping(cancelled).Err() }, rediserr.Canceled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			t.Logf("%T %q", err, err)
			if err == nil {
				t.Fatal("no error")
			}
			if got := rediserr.Classify(err); got != tc.want {
				t.Fatalf("Classify(%q) = %s, want %s", err, got, tc.want)
			}
		})
	}
}
