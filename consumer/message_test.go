package consumer_test

import (
	"context"
	"maps"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/consumer"
)

func TestMessageFields(t *testing.T) {
	fields := map[string]string{"n": "1", "header:tenant": "acme", "empty": ""}
	m := consumer.NewMessage(midstream.Entry{Stream: "jobs", ID: "1-0", Fields: fields})
	if m.Stream != "jobs" || m.ID != "1-0" || m.Deliveries != 1 {
		t.Errorf("message %+v", m)
	}
	if v, ok := m.Lookup("empty"); !ok || v != "" {
		t.Errorf("Lookup(empty) = %q, %v", v, ok)
	}
	if v, ok := m.Lookup("missing"); ok || v != "" {
		t.Errorf("Lookup(missing) = %q, %v", v, ok)
	}
	if m.Field("n") != "1" || m.Len() != 3 {
		t.Errorf("Field(n) = %q, Len = %d", m.Field("n"), m.Len())
	}
	got := m.Fields()
	if !maps.Equal(got, fields) {
		t.Errorf("Fields() = %v", got)
	}
	got["n"] = "changed" // a copy: the message keeps its own
	if m.Field("n") != "1" {
		t.Error("changing what Fields returned changed the message")
	}
	all := map[string]string{}
	for k, v := range m.All() {
		all[k] = v
	}
	if !maps.Equal(all, fields) {
		t.Errorf("All() = %v", all)
	}
	if h, ok := m.Header("tenant"); !ok || h != "acme" {
		t.Errorf("Header(tenant) = %q, %v", h, ok)
	}
	if hs := m.Headers(); !maps.Equal(hs, map[string]string{"tenant": "acme"}) {
		t.Errorf("Headers() = %v", hs)
	}
	if e := m.Entry(); e.Stream != "jobs" || e.ID != "1-0" || !maps.Equal(e.Fields, fields) {
		t.Errorf("Entry() = %+v", e)
	}
	if err := m.ExtendLease(context.Background()); err != consumer.ErrNotOwner {
		t.Errorf("ExtendLease on a NewMessage: %v, want ErrNotOwner", err)
	}
	if m := consumer.NewMessage(midstream.Entry{ID: "2-0"}); m.Len() != 0 || m.Fields() == nil {
		t.Errorf("message without fields: Len %d, Fields %v", m.Len(), m.Fields())
	}
}

// TestFieldAccessDoesNotAllocate: reading a delivered message's fields
// costs no allocation (they are read in place from go-redis's reply).
func TestFieldAccessDoesNotAllocate(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	publish(t, rdb, "jobs", 1)
	got := make(chan *consumer.Message, 1)
	c, err := consumer.New(rdb, "jobs", "workers", consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		select {
		case got <- m:
		default:
		}
		return nil
	}), consumer.WithStart(consumer.StartBeginning), consumer.WithBlock(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	stop := runInBackground(t, c)
	defer stop()
	var m *consumer.Message
	select {
	case m = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no message handled")
	}
	if m.Field("n") != "0" {
		t.Fatalf("Field(n) = %q", m.Field("n"))
	}
	if n := testing.AllocsPerRun(100, func() { _ = m.Field("n"); _, _ = m.Lookup("x"); _ = m.Len() }); n != 0 {
		t.Errorf("field access allocates %.1f times", n)
	}
}

// TestStalledMessageDoesNotHoldItsBatch: once handlers have proved fast, a
// worker drains a batch alone; a message that then blocks does not keep the
// rest of its batch from the other workers.
func TestStalledMessageDoesNotHoldItsBatch(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	const warm, batch = 500, 50
	publish(t, rdb, "jobs", warm)
	var mu sync.Mutex
	handled := map[int]bool{}
	rest := make(chan struct{})
	c, err := consumer.New(rdb, "jobs", "workers", consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		n, _ := strconv.Atoi(m.Field("n"))
		if n == warm {
			// The first message of the second batch blocks until every
			// other message of that batch is handled.
			select {
			case <-rest:
			case <-time.After(20 * time.Second):
				t.Error("the rest of the batch waited behind a stalled message")
			}
			return nil
		}
		mu.Lock()
		handled[n] = true
		done := n >= warm && len(handled) == warm+batch-1
		mu.Unlock()
		if done {
			close(rest)
		}
		return nil
	}), consumer.WithStart(consumer.StartBeginning), consumer.WithBlock(20*time.Millisecond),
		consumer.WithBatchSize(batch), consumer.WithConcurrency(4))
	if err != nil {
		t.Fatal(err)
	}
	stop := runInBackground(t, c)
	waitFor(t, 10*time.Second, "warm-up handled", func() bool { return c.Stats().Handled >= warm })
	pipe := rdb.Pipeline()
	for i := warm; i < warm+batch; i++ {
		pipe.XAdd(context.Background(), &redis.XAddArgs{Stream: "jobs", Values: []string{"n", strconv.Itoa(i)}})
	}
	if _, err := pipe.Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the second batch handled", func() bool { return c.Stats().Handled == warm+batch })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	_ = rdb.Close()
	mr.Close()
	goleak.VerifyNone(t, leaks)
}

// TestExactlyOnceUnderModeSwitches: every entry is handled exactly once by
// a live consumer while handler times cross the spread threshold both ways,
// stalls and fast runs mixed.
func TestExactlyOnceUnderModeSwitches(t *testing.T) {
	mr := miniredis.RunT(t)
	leaks := goleak.IgnoreCurrent()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	const n = 3000
	var mu sync.Mutex
	count := map[string]int{}
	var total atomic.Int64
	c, err := consumer.New(rdb, "mix", "g", consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		mu.Lock()
		count[m.ID]++
		mu.Unlock()
		switch r := rand.IntN(100); {
		case r < 2:
			time.Sleep(3 * time.Millisecond) // trips the stall timer
		case r < 10:
			spin(30 * time.Microsecond)
		}
		total.Add(1)
		return nil
	}), consumer.WithConcurrency(3), consumer.WithBatchSize(40), consumer.WithStart("0"))
	if err != nil {
		t.Fatal(err)
	}
	stop := runInBackground(t, c)
	ids := publish(t, rdb, "mix", n)
	deadline := time.Now().Add(30 * time.Second)
	for total.Load() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		if count[id] != 1 {
			t.Errorf("%s handled %d times", id, count[id])
		}
	}
	if p, _ := rdb.XPending(context.Background(), "mix", "g").Result(); p != nil && p.Count != 0 {
		t.Errorf("%d entries still pending after a clean shutdown", p.Count)
	}
	_ = rdb.Close()
	mr.Close()
	goleak.VerifyNone(t, leaks)
}

func spin(d time.Duration) {
	for s := time.Now(); time.Since(s) < d; {
	}
}

// TestTypedPoolHoldsNothingOfThePreviousMessage: the pooled T of TypedCodec
// holds nothing of an earlier message (JSON with slices and maps, a decode
// error halfway through).
func TestTypedPoolHoldsNothingOfThePreviousMessage(t *testing.T) {
	type T struct {
		A []int
		M map[string]int
		S string
		P *int
	}
	var got []T
	h := consumer.TypedCodec[T](midstream.JSONCodec[T]{}, func(ctx context.Context, v T, m *consumer.Message) error {
		got = append(got, v)
		return nil
	})
	ctx := context.Background()
	for _, s := range []string{
		`{"A":[1,2,3],"M":{"x":1},"S":"s","P":7}`,
		`{"A":[9],"M":{"y":2},"S":5}`, // S fails after A and M were set
		`{}`,
		`{"A":[4]}`,
	} {
		_ = h.Handle(ctx, consumer.NewMessage(midstream.Entry{ID: "1-0", Fields: map[string]string{"data": s}}))
	}
	if len(got) != 3 {
		t.Fatalf("got %d values, want 3", len(got))
	}
	if got[1].A != nil || got[1].M != nil || got[1].S != "" || got[1].P != nil {
		t.Errorf("empty entry decoded as %+v: pooled value leaked", got[1])
	}
	if len(got[0].A) != 3 || got[0].A[0] != 1 || got[0].M["x"] != 1 || got[0].M["y"] != 0 || *got[0].P != 7 {
		t.Errorf("first value changed by later decodes: %+v", got[0])
	}
	if len(got[2].A) != 1 || got[2].A[0] != 4 {
		t.Errorf("last value %+v", got[2])
	}
}
