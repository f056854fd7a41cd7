package integration

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/producer"
)

// TestIdempotentPublishLostReplies is T9: 10,000 idempotent publishes from
// 16 goroutines through a proxy that loses one reply in 20 (the command ran,
// its connection is cut before the reply): no duplicate, nothing missing,
// and every caller got the ID of the entry that holds its value. The
// client does not retry on its own (MaxRetries -1): the retries are the
// producer's. It runs with calls coalesced into pipelines (a lost piece of
// reply data may hold several calls' replies) and with one command per call.
func TestIdempotentPublishLostReplies(t *testing.T) {
	t.Run("coalesced", func(t *testing.T) { testIdempotentLostReplies(t) })
	t.Run("one command per call", func(t *testing.T) { testIdempotentLostReplies(t, producer.WithoutCoalescing()) })
}

func testIdempotentLostReplies(t *testing.T, opts ...producer.Option) {
	const n, workers = 10_000, 16
	srv := redistest.Start(t)
	proxy := srv.StartProxy(t)
	rdb := srv.NewClient(func(o *redis.Options) { o.Addr = proxy.Addr(); o.MaxRetries = -1 })
	stream := srv.Key("t9")
	p := newProducer[map[string]string](t, rdb, stream, append(opts, producer.WithIdempotentAttempts(20))...)
	ctx := context.Background()
	proxy.LoseReplies(20)

	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				key := "k" + strconv.Itoa(i)
				ids[i], errs[i] = p.Publish(ctx, map[string]string{"n": strconv.Itoa(i)}, producer.IdempotencyKey(key))
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	proxy.LoseReplies(0)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if proxy.LostReplies() == 0 {
		t.Fatal("the proxy lost no reply")
	}
	t.Logf("replies lost (and connections cut): %d", proxy.LostReplies())

	entries, err := srv.Client.XRange(ctx, stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	byN := map[string]string{}
	for _, e := range entries {
		v, _ := e.Values["n"].(string)
		if prev, dup := byN[v]; dup {
			t.Fatalf("value %s added twice: %s and %s", v, prev, e.ID)
		}
		byN[v] = e.ID
	}
	if len(entries) != n {
		t.Fatalf("stream holds %d entries, want %d", len(entries), n)
	}
	for i, id := range ids {
		if got := byN[strconv.Itoa(i)]; got != id {
			t.Fatalf("publish %d returned %s; its value is in entry %q", i, id, got)
		}
	}
}

func TestIdempotentPublish(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream := srv.Key("idem")
	p := newProducer[map[string]string](t, srv.Client, stream, producer.WithIdempotencyWindow(300*time.Millisecond))

	first, err := p.Publish(ctx, map[string]string{"v": "1"}, producer.IdempotencyKey("order-1"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.Publish(ctx, map[string]string{"v": "2"}, producer.IdempotencyKey("order-1"))
	if err != nil || again != first {
		t.Fatalf("repeat: %q, %v; want %q", again, err, first)
	}
	other, err := p.Publish(ctx, map[string]string{"v": "3"}, producer.IdempotencyKey("order-2"))
	if err != nil || other == first {
		t.Fatalf("other key: %q, %v", other, err)
	}
	if got := xlen(t, srv.Client, stream); got != 2 {
		t.Fatalf("XLEN %d, want 2", got)
	}
	// The state: one string per key holding the ID, expiring with the
	// window.
	state := producer.IdempotencyStateKey(stream, "order-1")
	if v := srv.Client.Get(ctx, state).Val(); v != first {
		t.Fatalf("state %q = %q, want %q", state, v, first)
	}
	if ttl := srv.Client.PTTL(ctx, state).Val(); ttl <= 0 || ttl > 300*time.Millisecond {
		t.Fatalf("state TTL %v, want within the window", ttl)
	}
	// After the window the key adds again.
	waitFor(t, 5*time.Second, "the key to expire", func() bool { return srv.Client.Exists(ctx, state).Val() == 0 })
	late, err := p.Publish(ctx, map[string]string{"v": "4"}, producer.IdempotencyKey("order-1"))
	if err != nil || late == first {
		t.Fatalf("after the window: %q, %v; want a new entry", late, err)
	}

	// A flushed script cache (a restarted server) is reloaded.
	if err := srv.Client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(ctx, map[string]string{"v": "5"}, producer.IdempotencyKey("order-5")); err != nil {
		t.Fatalf("after SCRIPT FLUSH: %v", err)
	}

	// Bad keys fail before anything is sent.
	for _, key := range []string{"", string(make([]byte, producer.MaxIdempotencyKeyLen+1))} {
		if _, err := p.Publish(ctx, map[string]string{"v": "x"}, producer.IdempotencyKey(key)); !errors.Is(err, midstream.ErrInvalidOption) {
			t.Fatalf("key of %d bytes: %v, want ErrInvalidOption", len(key), err)
		}
	}

	// NOMKSTREAM on a missing stream adds nothing and remembers nothing.
	missing := srv.Key("missing")
	pm := newProducer[map[string]string](t, srv.Client, missing, producer.WithNoMkStream())
	if _, err := pm.Publish(ctx, map[string]string{"v": "x"}, producer.IdempotencyKey("k")); !errors.Is(err, midstream.ErrNoStream) {
		t.Fatalf("missing stream: %v, want ErrNoStream", err)
	}
	if srv.Client.Exists(ctx, producer.IdempotencyStateKey(missing, "k")).Val() != 0 {
		t.Fatal("a key was remembered for an entry never added")
	}
}

// TestIdempotentKeyFunc covers the producer-wide key function, in Publish
// and PublishBatch (a batch holding the same key twice adds it once).
func TestIdempotentKeyFunc(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream := srv.Key("idemfn")
	key := func(m map[string]string) string { return m["order"] }
	p := newProducer[map[string]string](t, srv.Client, stream, producer.WithIdempotencyKeyFunc(key))

	a, err := p.Publish(ctx, map[string]string{"order": "a"})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := p.PublishBatch(ctx, []map[string]string{{"order": "a"}, {"order": "b"}, {"order": "b"}, {"order": "", "x": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if ids[0] != a || ids[1] != ids[2] || ids[1] == a || ids[3] == "" || ids[3] == ids[1] {
		t.Fatalf("batch IDs %v (first publish %s)", ids, a)
	}
	if got := xlen(t, srv.Client, stream); got != 3 {
		t.Fatalf("XLEN %d, want 3", got)
	}
	// A per-call key wins over the function.
	c, err := p.Publish(ctx, map[string]string{"order": "a"}, producer.IdempotencyKey("c"))
	if err != nil || c == a {
		t.Fatalf("per-call key: %q, %v", c, err)
	}
}

// TestIdempotentBatchLostReplies sends batches with keys through a proxy
// losing one reply in 5: each value lands once, with the ID returned.
func TestIdempotentBatchLostReplies(t *testing.T) {
	srv := redistest.Start(t)
	proxy := srv.StartProxy(t)
	rdb := srv.NewClient(func(o *redis.Options) { o.Addr = proxy.Addr(); o.MaxRetries = -1 })
	stream := srv.Key("idembatch")
	p := newProducer[map[string]string](t, rdb, stream,
		producer.WithIdempotencyKeyFunc(func(m map[string]string) string { return m["n"] }),
		producer.WithIdempotentAttempts(50))
	ctx := context.Background()
	proxy.LoseReplies(5)
	want := map[string]string{}
	for b := range 50 {
		vs := make([]map[string]string, 20)
		for i := range vs {
			vs[i] = map[string]string{"n": fmt.Sprint(b*20 + i)}
		}
		ids, err := p.PublishBatch(ctx, vs)
		if err != nil {
			t.Fatalf("batch %d: %v", b, err)
		}
		for i, id := range ids {
			want[vs[i]["n"]] = id
		}
	}
	proxy.LoseReplies(0)
	entries, err := srv.Client.XRange(ctx, stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(want) {
		t.Fatalf("%d entries, want %d", len(entries), len(want))
	}
	for _, e := range entries {
		if n, _ := e.Values["n"].(string); want[n] != e.ID {
			t.Fatalf("value %s in %s, caller got %q", n, e.ID, want[n])
		}
	}
}
