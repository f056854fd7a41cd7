package consumer_test

import (
	"context"
	"maps"
	"strconv"
	"sync"
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
