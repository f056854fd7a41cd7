package integration

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/internal/redisserver"
	"github.com/midstream-go/midstream/producer"
)

// streamMaster returns the address of the master holding stream and a
// client on it.
func streamMaster(t *testing.T, srv *redistest.Server, stream string) (string, *redis.Client) {
	t.Helper()
	addr := srv.Addr()
	if srv.Cluster != nil {
		var err error
		if addr, err = srv.Cluster.MasterOf(context.Background(), stream); err != nil {
			t.Fatal(err)
		}
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return addr, c
}

// replicasOf returns the addresses of the replicas ROLE on the master lists.
func replicasOf(t *testing.T, master *redis.Client) []string {
	t.Helper()
	role, err := master.Do(context.Background(), "ROLE").Slice()
	if err != nil || len(role) < 3 || role[0] != "master" {
		t.Fatalf("ROLE = %v, %v; want a master", role, err)
	}
	var addrs []string
	for _, r := range role[2].([]any) {
		f := r.([]any)
		addrs = append(addrs, f[0].(string)+":"+f[1].(string))
	}
	return addrs
}

// TestProducerDurable: with WithDurable(n), every Publish that returns no
// error is already on n replicas (read there at once), alone, coalesced and
// in a batch; asking for more replicas than there are returns the IDs of
// entries that are in the stream with a *DurabilityError saying how many
// confirmed.
func TestProducerDurable(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream := srv.Key("{durable}")
	_, master := streamMaster(t, srv, stream)
	replicas := replicasOf(t, master)
	if len(replicas) == 0 {
		replicas = []string{srv.StartReplica(t)}
	}
	n := len(replicas)
	// READONLY: a cluster replica serves reads of its master's slots.
	replica := redis.NewClient(&redis.Options{Addr: replicas[0], OnConnect: func(ctx context.Context, cn *redis.Conn) error {
		if srv.Cluster != nil {
			return cn.ReadOnly(ctx).Err()
		}
		return nil
	}})
	t.Cleanup(func() { _ = replica.Close() })

	t.Run("confirmed", func(t *testing.T) {
		p := newProducer[map[string]string](t, srv.Client, stream, producer.WithDurable(n, 5*time.Second))
		onReplica := func(id string) {
			t.Helper()
			if got := replica.XRange(ctx, stream, id, id).Val(); len(got) != 1 {
				t.Fatalf("entry %s acknowledged as durable is not on the replica", id)
			}
		}
		for i := range 50 {
			id, err := p.Publish(ctx, map[string]string{"i": strconv.Itoa(i)})
			if err != nil {
				t.Fatal(err)
			}
			onReplica(id)
		}
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 100 {
					id, err := p.Publish(ctx, map[string]string{"w": strconv.Itoa(w), "i": strconv.Itoa(i)})
					if err != nil {
						t.Error(err)
						return
					}
					if got := replica.XRange(ctx, stream, id, id).Val(); len(got) != 1 {
						t.Errorf("entry %s acknowledged as durable is not on the replica", id)
						return
					}
				}
			}()
		}
		wg.Wait()
		ids, err := p.PublishBatch(ctx, []map[string]string{{"b": "1"}, {"b": "2"}, {"b": "3"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			onReplica(id)
		}
	})

	t.Run("too few replicas", func(t *testing.T) {
		for _, coalesce := range []bool{true, false} {
			opts := []producer.Option{producer.WithDurable(n+1, 100*time.Millisecond)}
			if !coalesce {
				opts = append(opts, producer.WithoutCoalescing())
			}
			p := newProducer[map[string]string](t, srv.Client, stream, opts...)
			check := func(id string, err error) {
				t.Helper()
				var derr *producer.DurabilityError
				if !errors.Is(err, producer.ErrNotDurable) || !errors.As(err, &derr) {
					t.Fatalf("Publish with %d replicas wanted of %d = %q, %v; want a DurabilityError", n+1, n, id, err)
				}
				if derr.Acked != n || derr.Want != n+1 || derr.Err != nil {
					t.Fatalf("DurabilityError %+v, want Acked %d, Want %d", derr, n, n+1)
				}
				if id == "" || len(master.XRange(ctx, stream, id, id).Val()) != 1 {
					t.Fatalf("ID %q of an entry written but not durable is not in the stream", id)
				}
			}
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					id, err := p.Publish(ctx, map[string]string{"x": "1"})
					if err == nil {
						t.Error("Publish succeeded with too few replicas")
						return
					}
					check(id, err)
				}()
			}
			wg.Wait()
			ids, err := p.PublishBatch(ctx, []map[string]string{{"b": "1"}, {"b": "2"}})
			var berr *producer.BatchError
			if !errors.As(err, &berr) || berr.Failed() != 2 {
				t.Fatalf("PublishBatch = %v; want a BatchError with 2 failures", err)
			}
			for i, id := range ids {
				check(id, berr.Errs[i])
			}
		}
	})
}

// TestClusterDurableAfterManualFailover: a durable producer whose client
// still has the slot map from before a manual failover (CLUSTER FAILOVER,
// as before maintenance) sends its XADD to the old master, which answers
// MOVED without writing: the producer follows the redirection to the new
// master, as a plain publish does, instead of returning it to the caller.
func TestClusterDurableAfterManualFailover(t *testing.T) {
	srv := redistest.Start(t)
	if srv.Cluster == nil {
		t.Skip("needs the cluster backend (MIDSTREAM_REDIS_BACKEND=cluster)")
	}
	ctx := context.Background()
	stream := srv.Key("{durable-moved}")
	rdb := srv.NewUniversalClient() // its own slot map, stale after the failover
	t.Cleanup(func() { _ = rdb.Close() })
	p := newProducer[map[string]string](t, rdb, stream, producer.WithDurable(1, 5*time.Second))
	if _, err := p.Publish(ctx, map[string]string{"n": "0"}); err != nil {
		t.Fatal(err)
	}
	old, err := srv.Cluster.MasterOf(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Cluster.FailoverFrom(ctx, old); err != nil {
		t.Fatal(err)
	}
	promoted, err := srv.Cluster.WaitFailover(ctx, stream, old)
	if err != nil {
		t.Fatal(err)
	}
	id, err := p.Publish(ctx, map[string]string{"n": "1"})
	if err != nil {
		t.Fatalf("durable Publish after a manual failover from %s to %s: %v", old, promoted, err)
	}
	ids, err := p.PublishBatch(ctx, []map[string]string{{"n": "2"}, {"n": "3"}})
	if err != nil {
		t.Fatalf("durable PublishBatch after a manual failover: %v", err)
	}
	onPromoted := redis.NewClient(&redis.Options{Addr: promoted})
	t.Cleanup(func() { _ = onPromoted.Close() })
	for _, id := range append(ids, id) {
		if got := onPromoted.XRange(ctx, stream, id, id).Val(); len(got) != 1 {
			t.Errorf("entry %s is not on the new master %s", id, promoted)
		}
	}
	if n := onPromoted.XLen(ctx, stream).Val(); n != 4 {
		t.Errorf("the stream holds %d entries, want 4", n)
	}
}

// TestProducerDurableKeyedNotRepeated: a keyed publish that was written but
// not confirmed by enough replicas is not ambiguous: it returns its
// DurabilityError after one WAIT, not after sending the entry again
// (finding its key) and waiting once per idempotent attempt.
func TestProducerDurableKeyedNotRepeated(t *testing.T) {
	if redisserver.Binary() == "" {
		t.Skip("no redis-server on PATH")
	}
	// A server of its own, without replicas, whose command counts no other
	// test moves.
	s, err := redisserver.Start(redisserver.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr(),
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	waits := func() int64 {
		t.Helper()
		info, err := rdb.Info(ctx, "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		_, after, ok := strings.Cut(info, "cmdstat_wait:calls=")
		if !ok {
			return 0
		}
		n, _ := strconv.ParseInt(after[:strings.IndexByte(after, ',')], 10, 64)
		return n
	}
	for _, coalesce := range []bool{true, false} {
		opts := []producer.Option{producer.WithDurable(1, 20*time.Millisecond)}
		if !coalesce {
			opts = append(opts, producer.WithoutCoalescing())
		}
		p := newProducer[map[string]string](t, rdb, "keyed", opts...)
		before := waits()
		id, err := p.Publish(ctx, map[string]string{"x": "1"}, producer.IdempotencyKey("k"+strconv.FormatBool(coalesce)))
		if !errors.Is(err, producer.ErrNotDurable) || id == "" {
			t.Fatalf("keyed durable publish without replicas = %q, %v; want its ID and ErrNotDurable", id, err)
		}
		if n := waits() - before; n != 1 {
			t.Fatalf("coalesce %v: a keyed publish not confirmed ran %d WAITs, want 1", coalesce, n)
		}
	}
}
