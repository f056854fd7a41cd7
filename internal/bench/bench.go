// Package bench measures midstream against raw go-redis baselines doing the
// same work on the same server. The bench program (cmd/midstream-bench) and
// the Benchmark functions in package integration run it.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/producer"
)

// Event is the payload: about 100 bytes of JSON.
type Event struct {
	ID      int    `json:"id"`
	User    string `json:"user"`
	Action  string `json:"action"`
	Amount  string `json:"amount"`
	Comment string `json:"comment"`
	SentNs  int64  `json:"sent_ns,omitempty"`
}

// NewEvent returns event i.
func NewEvent(i int) Event {
	return Event{ID: i, User: "user-" + strconv.Itoa(i%1000), Action: "purchase", Amount: "9.99", Comment: "a small payload of about one hundred bytes"}
}

// Codec is how both sides store an Event: JSON in the field "data".
var Codec = midstream.JSONCodec[Event]{Field: "data"}

// rawValues is what a hand-written go-redis loop does: marshal and XADD.
func rawValues(e Event) []string {
	b, _ := json.Marshal(e)
	return []string{"data", string(b)}
}

// Fill adds n events to stream in pipelines of 1000.
func Fill(ctx context.Context, rdb redis.UniversalClient, stream string, n int) error {
	for start := 0; start < n; start += 1000 {
		pipe := rdb.Pipeline()
		for i := start; i < min(start+1000, n); i++ {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: rawValues(NewEvent(i))})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Result is one measurement.
type Result struct {
	N       int
	Elapsed time.Duration
}

// Rate is entries per second.
func (r Result) Rate() float64 { return float64(r.N) / r.Elapsed.Seconds() }

// RawPublish adds n events with one XADD per call from writers goroutines.
func RawPublish(ctx context.Context, rdb redis.UniversalClient, stream string, n, writers int) (Result, error) {
	return parallel(n, writers, func(i int) error {
		return rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: rawValues(NewEvent(i))}).Err()
	})
}

// Publish adds n events with Producer.Publish from writers goroutines.
func Publish(ctx context.Context, p *producer.Producer[Event], n, writers int) (Result, error) {
	return parallel(n, writers, func(i int) error {
		_, err := p.Publish(ctx, NewEvent(i))
		return err
	})
}

// RawPipelined adds n events in pipelines of batch XADDs.
func RawPipelined(ctx context.Context, rdb redis.UniversalClient, stream string, n, batch int) (Result, error) {
	start := time.Now()
	for done := 0; done < n; done += batch {
		pipe := rdb.Pipeline()
		for i := done; i < min(done+batch, n); i++ {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: rawValues(NewEvent(i))})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return Result{}, err
		}
	}
	return Result{N: n, Elapsed: time.Since(start)}, nil
}

// PublishBatch adds n events with Producer.PublishBatch in batches.
func PublishBatch(ctx context.Context, p *producer.Producer[Event], n, batch int) (Result, error) {
	start := time.Now()
	events := make([]Event, 0, batch)
	for done := 0; done < n; done += batch {
		events = events[:0]
		for i := done; i < min(done+batch, n); i++ {
			events = append(events, NewEvent(i))
		}
		if _, err := p.PublishBatch(ctx, events); err != nil {
			return Result{}, err
		}
	}
	return Result{N: n, Elapsed: time.Since(start)}, nil
}

// RawConsume drains the n entries of stream through a new group with
// consumers goroutines, each doing XREADGROUP COUNT 100 and one multi-ID
// XACK per batch, and returns when all n are acknowledged.
func RawConsume(ctx context.Context, rdb redis.UniversalClient, stream, group string, n, consumers int) (Result, error) {
	if err := rdb.XGroupCreate(ctx, stream, group, "0").Err(); err != nil {
		return Result{}, err
	}
	var acked atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for c := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("raw-%d", c)
			for acked.Load() < int64(n) && firstErr.Load() == nil {
				res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: name, Streams: []string{stream, ">"}, Count: 100, Block: 10 * time.Millisecond}).Result()
				if err == redis.Nil {
					continue
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				ids := make([]string, 0, len(res[0].Messages))
				for _, m := range res[0].Messages {
					ids = append(ids, m.ID)
				}
				if err := rdb.XAck(ctx, stream, group, ids...).Err(); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				acked.Add(int64(len(ids)))
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return Result{}, *e
	}
	return Result{N: n, Elapsed: time.Since(start)}, nil
}

// Consume drains the n entries of stream through a new group with consumers
// midstream consumers and a no-op handler, and returns when all n are
// acknowledged. opts are added to each consumer's options.
func Consume(ctx context.Context, rdb redis.UniversalClient, stream, group string, n, consumers int, opts ...consumer.Option) (Result, error) {
	noop := consumer.HandlerFunc(func(context.Context, *consumer.Message) error { return nil })
	var cs []*consumer.Consumer
	for range consumers {
		c, err := consumer.New(rdb, stream, group, noop, append([]consumer.Option{
			consumer.WithStart(consumer.StartBeginning), consumer.WithBlock(10 * time.Millisecond),
		}, opts...)...)
		if err != nil {
			return Result{}, err
		}
		cs = append(cs, c)
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.Run(runCtx)
		}()
	}
	acked := func() int64 {
		var sum int64
		for _, c := range cs {
			sum += c.Stats().Acked
		}
		return sum
	}
	for acked() < int64(n) && ctx.Err() == nil {
		time.Sleep(200 * time.Microsecond)
	}
	elapsed := time.Since(start)
	stop()
	wg.Wait()
	return Result{N: n, Elapsed: elapsed}, ctx.Err()
}

// Orphan fills stream with n events, creates group and delivers every entry
// to a consumer "crashed" that never acknowledges them: n pending entries
// for another consumer to reclaim.
func Orphan(ctx context.Context, rdb redis.UniversalClient, stream, group string, n int) error {
	if err := Fill(ctx, rdb, stream, n); err != nil {
		return err
	}
	if err := rdb.XGroupCreate(ctx, stream, group, "0").Err(); err != nil {
		return err
	}
	for read := 0; read < n; {
		res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "crashed", Streams: []string{stream, ">"}, Count: 1000, Block: -1}).Result()
		if err != nil {
			return err
		}
		read += len(res[0].Messages)
	}
	time.Sleep(20 * time.Millisecond) // idle for longer than the reclaimers' minimum
	return nil
}

// RawReclaim takes over the n entries Orphan left with the loop one writes
// by hand: XAUTOCLAIM 100 at a time, then XACK them.
func RawReclaim(ctx context.Context, rdb redis.UniversalClient, stream, group string, n int) (Result, error) {
	start := time.Now()
	cursor, acked := "0-0", 0
	for acked < n {
		msgs, next, err := rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: stream, Group: group, Consumer: "raw", MinIdle: time.Millisecond, Start: cursor, Count: 100}).Result()
		if err != nil {
			return Result{}, err
		}
		cursor = next
		if len(msgs) == 0 {
			continue
		}
		ids := make([]string, len(msgs))
		for i := range msgs {
			ids[i] = msgs[i].ID
		}
		if err := rdb.XAck(ctx, stream, group, ids...).Err(); err != nil {
			return Result{}, err
		}
		acked += len(ids)
	}
	return Result{N: n, Elapsed: time.Since(start)}, nil
}

// Reclaim takes over the n entries Orphan left with one midstream consumer
// (minimum idle time consumer.MinMinIdle) and a no-op handler, and returns when all n are
// acknowledged.
func Reclaim(ctx context.Context, rdb redis.UniversalClient, stream, group string, n int) (Result, error) {
	return Consume(ctx, rdb, stream, group, n, 1, consumer.WithMinIdle(consumer.MinMinIdle), consumer.WithClaimInterval(time.Millisecond))
}
