package integration

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/producer"
)

type activity struct {
	UserID    string    `redis:"userId"`
	Action    string    `redis:"action"`
	Amount    float64   `redis:"amount"`
	Timestamp time.Time `redis:"timestamp,unixms"`
	Seq       int       `redis:"seq,omitempty"`
	Raw       []byte    `redis:"raw,omitempty"`
}

func newProducer[T any](t *testing.T, rdb redis.UniversalClient, stream string, opts ...producer.Option) *producer.Producer[T] {
	t.Helper()
	p, err := producer.New[T](rdb, stream, opts...)
	if err != nil {
		t.Fatalf("producer.New: %v", err)
	}
	return p
}

func xlen(t *testing.T, rdb redis.UniversalClient, stream string) int64 {
	t.Helper()
	n, err := rdb.XLen(context.Background(), stream).Result()
	if err != nil {
		t.Fatalf("XLEN %s: %v", stream, err)
	}
	return n
}

func TestProducerIDsIncrease(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	p := newProducer[activity](t, srv.Client, srv.Key("activity"))
	var prev midstream.ID
	for i := range 500 {
		id, err := p.Publish(ctx, activity{UserID: "u", Action: "a", Seq: i})
		if err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
		parsed, err := midstream.ParseID(id)
		if err != nil {
			t.Fatalf("Publish returned %q: %v", id, err)
		}
		if parsed.Compare(prev) <= 0 {
			t.Fatalf("ID %s not after %s", parsed, prev)
		}
		prev = parsed
	}
	if n := xlen(t, srv.Client, p.Stream()); n != 500 {
		t.Fatalf("XLEN = %d, want 500", n)
	}
}

func TestProducerBatchKeepsOrder(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream := srv.Key("batch")
	p := newProducer[activity](t, srv.Client, stream)
	codec, err := midstream.NewFlatCodec[activity]()
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	batch := make([]activity, n)
	for i := range batch {
		batch[i] = activity{UserID: strconv.Itoa(i % 7), Action: "buy", Seq: i + 1}
	}
	ids, err := p.PublishBatch(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := srv.Client.XRange(ctx, stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != n || len(ids) != n {
		t.Fatalf("%d entries, %d ids, want %d", len(msgs), len(ids), n)
	}
	for i, m := range msgs {
		var a activity
		if err := codec.Decode(stringFields(m.Values), &a); err != nil {
			t.Fatal(err)
		}
		if a.Seq != i+1 || ids[i] != m.ID {
			t.Fatalf("entry %d: seq %d id %s, want seq %d id %s", i, a.Seq, m.ID, i+1, ids[i])
		}
	}
}

func TestProducerBatchReportsPerEntryErrors(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream := srv.Key("explicit")
	p := newProducer[map[string]string](t, srv.Client, stream,
		producer.WithIDFunc(func(m map[string]string) string { return m["id"] }))
	ids, err := p.PublishBatch(ctx, []map[string]string{
		{"id": "5-1"}, {"id": "5-1"}, {"id": "4-0"}, {"id": "6-*"}, {"id": "*"},
	})
	var be *producer.BatchError
	if !errors.As(err, &be) || be.Failed() != 2 {
		t.Fatalf("PublishBatch error %v, want 2 failed entries", err)
	}
	for _, i := range []int{1, 2} {
		if !errors.Is(be.Errs[i], midstream.ErrIDNotIncreasing) || ids[i] != "" {
			t.Errorf("entry %d: id %q err %v, want ErrIDNotIncreasing", i, ids[i], be.Errs[i])
		}
	}
	if ids[0] != "5-1" || ids[3] != "6-0" || ids[4] == "" || be.Errs[0] != nil || be.Errs[3] != nil || be.Errs[4] != nil {
		t.Fatalf("ids %q errs %v", ids, be.Errs)
	}
	if n := xlen(t, srv.Client, stream); n != 3 {
		t.Fatalf("XLEN = %d, want 3", n)
	}
}

func TestProducerTrimOnAdd(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	fill := func(t *testing.T, p *producer.Producer[activity], n int) {
		t.Helper()
		batch := make([]activity, n)
		for i := range batch {
			batch[i] = activity{UserID: "u", Seq: i + 1}
		}
		// Publish one by one: trimming happens on every XADD.
		for _, a := range batch {
			if _, err := p.Publish(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Run("exact maxlen", func(t *testing.T) {
		stream := srv.Key("exact")
		fill(t, newProducer[activity](t, srv.Client, stream, producer.WithTrim(producer.Trim{MaxLen: 50})), 300)
		if n := xlen(t, srv.Client, stream); n != 50 {
			t.Fatalf("XLEN = %d, want 50", n)
		}
		first, err := srv.Client.XRangeN(ctx, stream, "-", "+", 1).Result()
		if err != nil || len(first) != 1 || first[0].Values["seq"] != "251" {
			t.Fatalf("oldest kept entry %v %v, want seq 251", first, err)
		}
	})
	t.Run("approximate maxlen", func(t *testing.T) {
		// Redis trims whole nodes of stream-node-max-entries (100 by default):
		// the length stays between the bound and the bound plus one node.
		stream := srv.Key("approx")
		fill(t, newProducer[activity](t, srv.Client, stream, producer.WithTrim(producer.Trim{MaxLen: 100, Approx: true})), 1000)
		if n := xlen(t, srv.Client, stream); n < 100 || n > 200 {
			t.Fatalf("XLEN = %d, want within [100, 200]", n)
		}
	})
	t.Run("approximate with limit below node size trims nothing", func(t *testing.T) {
		stream := srv.Key("limit")
		fill(t, newProducer[activity](t, srv.Client, stream, producer.WithTrim(producer.Trim{MaxLen: 10, Approx: true, Limit: 50})), 400)
		if n := xlen(t, srv.Client, stream); n != 400 {
			t.Fatalf("XLEN = %d, want 400 (LIMIT 50 cannot evict a 100-entry node)", n)
		}
	})
	t.Run("minid", func(t *testing.T) {
		stream := srv.Key("minid")
		plain := newProducer[map[string]string](t, srv.Client, stream)
		for i := 1; i <= 10; i++ {
			if _, err := plain.Publish(ctx, map[string]string{"n": strconv.Itoa(i)}, producer.ID(fmt.Sprintf("%d-0", i))); err != nil {
				t.Fatal(err)
			}
		}
		p := newProducer[map[string]string](t, srv.Client, stream, producer.WithTrim(producer.Trim{MinID: "6-0"}))
		if _, err := p.Publish(ctx, map[string]string{"n": "11"}); err != nil {
			t.Fatal(err)
		}
		if n := xlen(t, srv.Client, stream); n != 6 {
			t.Fatalf("XLEN = %d, want 6 (IDs 6..10 and the new one)", n)
		}
	})
	t.Run("max age", func(t *testing.T) {
		stream := srv.Key("maxage")
		plain := newProducer[map[string]string](t, srv.Client, stream)
		old := time.Now().Add(-2 * time.Hour).UnixMilli()
		for i := range 5 {
			if _, err := plain.Publish(ctx, map[string]string{"age": "old"}, producer.ID(fmt.Sprintf("%d-0", old+int64(i)))); err != nil {
				t.Fatal(err)
			}
		}
		p := newProducer[map[string]string](t, srv.Client, stream, producer.WithTrim(producer.Trim{MaxAge: time.Hour}))
		if _, err := p.Publish(ctx, map[string]string{"age": "new"}); err != nil {
			t.Fatal(err)
		}
		msgs := srv.Client.XRange(ctx, stream, "-", "+").Val()
		if len(msgs) != 1 || msgs[0].Values["age"] != "new" {
			t.Fatalf("entries after MaxAge trim: %v", msgs)
		}
	})
}

func TestProducerSizeLimit(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream := srv.Key("sized")
	p := newProducer[activity](t, srv.Client, stream, producer.WithMaxEntrySize(1024))
	if _, err := p.Publish(ctx, activity{UserID: "u", Raw: []byte(strings.Repeat("x", 900))}); err != nil {
		t.Fatalf("entry under the limit: %v", err)
	}
	_, err := p.Publish(ctx, activity{UserID: "u", Raw: []byte(strings.Repeat("x", 1024))})
	if !errors.Is(err, midstream.ErrTooLarge) {
		t.Fatalf("entry over the limit: %v, want ErrTooLarge", err)
	}
	if _, err := p.PublishBatch(ctx, []activity{{UserID: "ok"}, {Raw: make([]byte, 2000)}}); !errors.Is(err, midstream.ErrTooLarge) {
		t.Fatalf("batch with an entry over the limit: %v, want ErrTooLarge", err)
	}
	if n := xlen(t, srv.Client, stream); n != 1 {
		t.Fatalf("XLEN = %d, want 1: an oversized entry or its batch reached Redis", n)
	}
}

func TestProducerHonoursContext(t *testing.T) {
	srv := redistest.Start(t)
	stream := srv.Key("ctx")
	p := newProducer[activity](t, srv.Client, stream)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Publish(ctx, activity{UserID: "u"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish with a cancelled ctx: %v", err)
	}
	if _, err := p.PublishBatch(ctx, []activity{{UserID: "u"}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("PublishBatch with a cancelled ctx: %v", err)
	}
	dctx, dcancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer dcancel()
	if _, err := p.Publish(dctx, activity{UserID: "u"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish past its deadline: %v", err)
	}
	if n, _ := srv.Client.Exists(context.Background(), stream).Result(); n != 0 {
		t.Fatal("an entry was added under a done context")
	}
}

func TestProducerNoMkStream(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream := srv.Key("nomk")
	p := newProducer[activity](t, srv.Client, stream, producer.WithNoMkStream())
	if _, err := p.Publish(ctx, activity{UserID: "u"}); !errors.Is(err, midstream.ErrNoStream) {
		t.Fatalf("Publish to a missing stream: %v, want ErrNoStream", err)
	}
	if _, err := p.PublishBatch(ctx, []activity{{UserID: "u"}}); !errors.Is(err, midstream.ErrNoStream) {
		t.Fatalf("PublishBatch to a missing stream: %v, want ErrNoStream", err)
	}
	if n, _ := srv.Client.Exists(ctx, stream).Result(); n != 0 {
		t.Fatal("NOMKSTREAM created the stream")
	}
	if err := srv.Client.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"k", "v"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Publish(ctx, activity{UserID: "u"}); err != nil {
		t.Fatalf("Publish to an existing stream: %v", err)
	}
}

// TestProducerInterop checks entries cross between midstream and a client
// writing the article's flat layout, byte for byte.
func TestProducerInterop(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream := srv.Key("activity")
	// What node-redis's xAdd('activity', '*', {userId, action, amount, timestamp}) stores.
	if err := srv.Client.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{
		"userId", "123", "action", "purchase", "amount", "9.99", "timestamp", "1710761234567",
	}}).Err(); err != nil {
		t.Fatal(err)
	}
	p := newProducer[activity](t, srv.Client, stream)
	raw := []byte{0, 1, 2, 255, '\r', '\n'}
	if _, err := p.Publish(ctx, activity{UserID: "7", Action: "refund", Amount: -0.5, Timestamp: time.UnixMilli(1710761234999), Raw: raw}); err != nil {
		t.Fatal(err)
	}
	codec, _ := midstream.NewFlatCodec[activity]()
	msgs := srv.Client.XRange(ctx, stream, "-", "+").Val()
	if len(msgs) != 2 {
		t.Fatalf("%d entries", len(msgs))
	}
	var a, b activity
	if err := codec.Decode(stringFields(msgs[0].Values), &a); err != nil {
		t.Fatal(err)
	}
	if a.UserID != "123" || a.Amount != 9.99 || a.Timestamp.UnixMilli() != 1710761234567 {
		t.Fatalf("article entry decoded to %+v", a)
	}
	if msgs[1].Values["timestamp"] != "1710761234999" || msgs[1].Values["amount"] != "-0.5" {
		t.Fatalf("midstream entry as another client sees it: %v", msgs[1].Values)
	}
	if err := codec.Decode(stringFields(msgs[1].Values), &b); err != nil || string(b.Raw) != string(raw) {
		t.Fatalf("binary field round trip: %q %v", b.Raw, err)
	}
}

// stringFields converts go-redis's field map.
func stringFields(m map[string]any) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k], _ = v.(string)
	}
	return out
}

// TestProducerConcurrentPublish: concurrent Publish calls (coalesced into
// pipelines) each get their own ID, and each caller's entries keep its order.
func TestProducerConcurrentPublish(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream := srv.Key("concurrent")
	p := newProducer[map[string]string](t, srv.Client, stream)
	const writers, each = 32, 300
	ids := make([][]string, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id, err := p.Publish(ctx, map[string]string{"w": strconv.Itoa(w), "i": strconv.Itoa(i)})
				if err != nil {
					t.Error(err)
					return
				}
				ids[w] = append(ids[w], id)
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for w, list := range ids {
		var prev midstream.ID
		for _, s := range list {
			id, err := midstream.ParseID(s)
			if err != nil || id.Compare(prev) <= 0 || seen[s] {
				t.Fatalf("writer %d: ID %s (after %s, seen %v): %v", w, s, prev, seen[s], err)
			}
			seen[s], prev = true, id
		}
	}
	if len(seen) != writers*each {
		t.Fatalf("%d IDs, want %d", len(seen), writers*each)
	}
	// Every entry holds what its caller published under that ID.
	msgs := srv.Client.XRange(ctx, stream, "-", "+").Val()
	if len(msgs) != writers*each {
		t.Fatalf("XLEN %d, want %d", len(msgs), writers*each)
	}
	byID := map[string]map[string]any{}
	for _, m := range msgs {
		byID[m.ID] = m.Values
	}
	for w, list := range ids {
		for i, id := range list {
			if v := byID[id]; v["w"] != strconv.Itoa(w) || v["i"] != strconv.Itoa(i) {
				t.Fatalf("entry %s holds %v, want w=%d i=%d", id, v, w, i)
			}
		}
	}
}
