package producer_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/producer"
)

// A partition key function that panics fails the call, not the process.
func TestPartitionKeyFuncPanics(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	p, err := producer.New[map[string]string](rdb, "orders", producer.WithPartitions(midstream.Partitions{Count: 2}),
		producer.WithPartitionKeyFunc(func(v map[string]string) string {
			if v["k"] == "" {
				panic("no key")
			}
			return v["k"]
		}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := p.Publish(ctx, map[string]string{"x": "1"}); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Fatalf("publish: %v", err)
	}
	ids, err := p.PublishBatch(ctx, []map[string]string{{"k": "a"}, {"x": "1"}})
	if !errors.Is(err, producer.ErrNotSent) || ids[0] != "" {
		t.Fatalf("batch: %v %v", ids, err)
	}
	for _, k := range p.Partitions() {
		if mr.Exists(k) {
			t.Fatalf("%s written", k)
		}
	}
	if _, err := p.Publish(ctx, map[string]string{"k": "a"}); err != nil {
		t.Fatal(err)
	}
}

// A panic in the caller's code while a partitioned batch is prepared (here
// the codec, run per partition) reaches the caller's goroutine, as it does
// for a batch to one stream, where the caller may recover it: it must not
// take down the process from a goroutine of the producer.
func TestPartitionedBatchPanicReachesCaller(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	p, err := producer.New[map[string]string](rdb, "orders", producer.WithPartitions(midstream.Partitions{Count: 3}),
		producer.WithIDFunc(func(v map[string]string) string {
			if v["bad"] != "" {
				panic("bad value")
			}
			return ""
		}))
	if err != nil {
		t.Fatal(err)
	}
	var got any
	func() {
		defer func() { got = recover() }()
		_, _ = p.PublishBatch(context.Background(), []map[string]string{{"k": "1"}, {"bad": "1"}, {"k": "2"}})
	}()
	if got != "bad value" {
		t.Fatalf("recovered %v, want the ID func's panic", got)
	}
}

// A publish waiting for another call's first layout check (here held up by
// a server that never answers) gives up when its own ctx ends, instead of
// waiting for that check to end.
func TestPartitionedFirstCheckHonoursContext(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan struct{}, 1)
	var conns []net.Conn
	var mu sync.Mutex
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				buf := make([]byte, 1024)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
					select {
					case got <- struct{}{}:
					default:
					}
				}
			}()
		}
	}()
	// No reply ever comes, and no read deadline ends the wait: only
	// closing the connections at the end of the test does.
	rdb := redis.NewClient(&redis.Options{Addr: l.Addr().String(), ReadTimeout: -1, MaxRetries: -1, Protocol: 2, DisableIdentity: true})
	defer rdb.Close()
	p, err := producer.New[map[string]string](rdb, "orders", producer.WithPartitions(midstream.Partitions{Count: 2}))
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() {
		_, err := p.Publish(context.Background(), map[string]string{"k": "1"})
		first <- err
	}()
	<-got // the first call checks the layout, and waits
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	second := make(chan error, 1)
	go func() {
		_, err := p.Publish(ctx, map[string]string{"k": "2"})
		second <- err
	}()
	select {
	case err := <-second:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("publish with a cancelled ctx: %v", err)
		}
	case err := <-first:
		t.Fatalf("the first call returned (%v) before the cancelled one", err)
	case <-time.After(time.Minute):
		t.Fatal("a publish with a cancelled ctx waits for another call's layout check")
	}
}
