// Package bench measures midstream against the strongest loops a competent
// engineer writes by hand with go-redis, doing the same work on the same
// server: the bench program (cmd/midstream-bench) runs it, and so do the
// Benchmark functions beside it.
//
// The hand-written loops are the baselines: one XADD per call or pipelines
// of XADDs with the fields encoded by hand; XREADGROUP COUNT 100 then one
// multi-ID XACK per batch, fields read in place from go-redis's reply (no
// copy), and, for the typed variant, the struct decoded from them by hand.
package bench

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/producer"
)

// Event is the payload: six flat fields, about 100 bytes, stored the way
// midstream's default codec for structs stores them.
type Event struct {
	ID      int    `redis:"id"`
	User    string `redis:"user"`
	Action  string `redis:"action"`
	Amount  string `redis:"amount"`
	Comment string `redis:"comment"`
	SentNs  int64  `redis:"sent_ns"`
}

// NewEvent returns event i.
func NewEvent(i int) Event {
	return Event{ID: i, User: "user-" + strconv.Itoa(i%1000), Action: "purchase", Amount: "9.99", Comment: "a small payload of about a hundred bytes"}
}

// Codec is how midstream stores an Event: the default codec for structs.
var Codec = mustCodec()

func mustCodec() midstream.Codec[Event] {
	c, err := midstream.DefaultCodec[Event]()
	if err != nil {
		panic(err)
	}
	return c
}

// RawValues is what a hand-written loop writes: the same fields, encoded
// by hand.
func RawValues(e Event) []string {
	return []string{"id", strconv.Itoa(e.ID), "user", e.User, "action", e.Action, "amount", e.Amount,
		"comment", e.Comment, "sent_ns", strconv.FormatInt(e.SentNs, 10)}
}

// rawDecode is what a hand-written loop does to get an Event back: read
// each field in place from go-redis's reply and parse the numbers.
func rawDecode(v map[string]any) (Event, error) {
	var e Event
	var err error
	s := func(name string) string { x, _ := v[name].(string); return x }
	if e.ID, err = strconv.Atoi(s("id")); err != nil {
		return e, err
	}
	e.User, e.Action, e.Amount, e.Comment = s("user"), s("action"), s("amount"), s("comment")
	if e.SentNs, err = strconv.ParseInt(s("sent_ns"), 10, 64); err != nil {
		return e, err
	}
	return e, nil
}

// eventFields are the fields the field-reading handlers read.
var eventFields = [...]string{"id", "user", "action", "amount", "comment", "sent_ns"}

// rawRead reads every field of an entry in place, as a handler that only
// looks at them would, and returns their total length.
func rawRead(v map[string]any) int {
	n := 0
	for _, f := range eventFields {
		s, _ := v[f].(string)
		n += len(s)
	}
	return n
}

// sink keeps what the handlers read alive.
var sink atomic.Int64

// Handler is the work a consumer does per entry, the same on both sides.
type Handler int

// Handlers.
const (
	// ReadFields reads each field in place: a raw consumer.HandlerFunc
	// against a loop reading go-redis's reply.
	ReadFields Handler = iota
	// Decode decodes the Event: consumer.Typed against a loop decoding
	// the fields by hand.
	Decode
)

func (h Handler) String() string {
	if h == Decode {
		return "typed handler"
	}
	return "field-reading handler"
}

// handler returns midstream's handler doing h's work.
func (h Handler) handler(record func(Event)) consumer.Handler {
	if h == Decode {
		return consumer.TypedCodec(Codec, func(_ context.Context, e Event, _ *consumer.Message) error {
			if record != nil {
				record(e)
			}
			sink.Add(int64(e.ID))
			return nil
		})
	}
	return consumer.HandlerFunc(func(_ context.Context, m *consumer.Message) error {
		n := 0
		for _, f := range eventFields {
			n += len(m.Field(f))
		}
		if record != nil {
			ns, _ := strconv.ParseInt(m.Field("sent_ns"), 10, 64)
			record(Event{SentNs: ns})
		}
		sink.Add(int64(n))
		return nil
	})
}

// raw does h's work on one entry of a hand-written loop.
func (h Handler) raw(v map[string]any, record func(Event)) error {
	if h == Decode {
		e, err := rawDecode(v)
		if err != nil {
			return err
		}
		if record != nil {
			record(e)
		}
		sink.Add(int64(e.ID))
		return nil
	}
	n := rawRead(v)
	if record != nil {
		s, _ := v["sent_ns"].(string)
		ns, _ := strconv.ParseInt(s, 10, 64)
		record(Event{SentNs: ns})
	}
	sink.Add(int64(n))
	return nil
}

// Fill adds n events to stream in pipelines of 1000.
func Fill(ctx context.Context, rdb redis.UniversalClient, stream string, n int) error {
	return fill(ctx, rdb, stream, n, nil)
}

func fill(ctx context.Context, rdb redis.UniversalClient, stream string, n int, extra func(i int) []string) error {
	for start := 0; start < n; start += 1000 {
		pipe := rdb.Pipeline()
		for i := start; i < min(start+1000, n); i++ {
			v := RawValues(NewEvent(i))
			if extra != nil {
				v = append(v, extra(i)...)
			}
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: v})
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
	CPU     time.Duration // the process's CPU time (user and system) during the run
	Allocs  uint64        // heap allocations during the run
	Bytes   uint64        // bytes allocated during the run
}

// Rate is entries per second.
func (r Result) Rate() float64 { return float64(r.N) / r.Elapsed.Seconds() }

// AllocsPerEntry is the heap allocations per entry.
func (r Result) AllocsPerEntry() float64 {
	if r.N == 0 {
		return 0
	}
	return float64(r.Allocs) / float64(r.N)
}

// CPUPerEntry is the client's CPU time per entry.
func (r Result) CPUPerEntry() time.Duration {
	if r.N == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.N)
}

// clock measures wall and process CPU time and allocations from its start.
type clock struct {
	wall          time.Time
	cpu           time.Duration
	allocs, bytes uint64
}

func startClock() clock {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return clock{wall: time.Now(), cpu: processCPU(), allocs: ms.Mallocs, bytes: ms.TotalAlloc}
}

func (c clock) result(n int) Result {
	elapsed, cpu := time.Since(c.wall), processCPU()-c.cpu
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Result{N: n, Elapsed: elapsed, CPU: cpu, Allocs: ms.Mallocs - c.allocs, Bytes: ms.TotalAlloc - c.bytes}
}

// processCPU is the CPU time the process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// RawPublish adds n events with one XADD per call from writers goroutines.
func RawPublish(ctx context.Context, rdb redis.UniversalClient, stream string, n, writers int) (Result, error) {
	return parallel(n, writers, func(i int) error {
		return rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: RawValues(NewEvent(i))}).Err()
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
	clk := startClock()
	for done := 0; done < n; done += batch {
		pipe := rdb.Pipeline()
		for i := done; i < min(done+batch, n); i++ {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: RawValues(NewEvent(i))})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return Result{}, err
		}
	}
	return clk.result(n), nil
}

// PublishBatch adds n events with Producer.PublishBatch in batches.
func PublishBatch(ctx context.Context, p *producer.Producer[Event], n, batch int) (Result, error) {
	clk := startClock()
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
	return clk.result(n), nil
}

// rawLoop is the strongest consuming loop written by hand: XREADGROUP
// COUNT 100 (blocking up to block), h's work on each entry read in place,
// then one XACK for the whole batch, reported to acked. It runs until stop
// returns true.
func rawLoop(ctx context.Context, rdb redis.UniversalClient, stream, group, name string, block time.Duration, h Handler,
	record func(Event), acked func(int), stop func() bool) error {
	for !stop() {
		res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: name, Streams: []string{stream, ">"}, Count: 100, Block: block}).Result()
		if err == redis.Nil {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		msgs := res[0].Messages
		ids := make([]string, len(msgs))
		for i := range msgs {
			if err := h.raw(msgs[i].Values, record); err != nil {
				return err
			}
			ids[i] = msgs[i].ID
		}
		if err := rdb.XAck(ctx, stream, group, ids...).Err(); err != nil {
			if ctx.Err() != nil { // stopped between the read and the ack
				return nil
			}
			return err
		}
		acked(len(ids))
	}
	return nil
}

// RawConsume drains the n entries of stream through a new group with
// consumers goroutines each running the hand-written loop, and returns when
// all n are acknowledged.
func RawConsume(ctx context.Context, rdb redis.UniversalClient, stream, group string, n, consumers int, h Handler) (Result, error) {
	if err := rdb.XGroupCreate(ctx, stream, group, "0").Err(); err != nil {
		return Result{}, err
	}
	var acked atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	clk := startClock()
	for c := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := rawLoop(ctx, rdb, stream, group, fmt.Sprintf("raw-%d", c), 10*time.Millisecond, h, nil,
				func(k int) { acked.Add(int64(k)) },
				func() bool { return acked.Load() >= int64(n) || firstErr.Load() != nil })
			if err != nil {
				firstErr.CompareAndSwap(nil, &err)
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return Result{}, *e
	}
	return clk.result(n), nil
}

// Consume drains the n entries of stream through a new group with consumers
// midstream consumers doing h's work, and returns when all n are
// acknowledged. opts are added to each consumer's options.
func Consume(ctx context.Context, rdb redis.UniversalClient, stream, group string, n, consumers int, h Handler, opts ...consumer.Option) (Result, error) {
	var cs []*consumer.Consumer
	for range consumers {
		c, err := consumer.New(rdb, stream, group, h.handler(nil), append([]consumer.Option{
			consumer.WithStart(consumer.StartBeginning), consumer.WithBlock(10 * time.Millisecond),
		}, opts...)...)
		if err != nil {
			return Result{}, err
		}
		cs = append(cs, c)
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	clk := startClock()
	runErrs := make(chan error, len(cs)) // a consumer that stopped on its own
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(runCtx); err != nil {
				runErrs <- err
			}
		}()
	}
	acked := func() int64 {
		var sum int64
		for _, c := range cs {
			sum += c.Stats().Acked
		}
		return sum
	}
	var runErr error
	for acked() < int64(n) && ctx.Err() == nil && runErr == nil {
		select {
		case runErr = <-runErrs:
		default:
			time.Sleep(200 * time.Microsecond)
		}
	}
	r := clk.result(n)
	stop()
	wg.Wait()
	if runErr != nil {
		return Result{}, fmt.Errorf("consumer stopped: %w", runErr)
	}
	return r, ctx.Err()
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
	clk := startClock()
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
	return clk.result(n), nil
}

// Reclaim takes over the n entries Orphan left with one midstream consumer
// (minimum idle time consumer.MinMinIdle) and a field-reading handler, and
// returns when all n are acknowledged.
func Reclaim(ctx context.Context, rdb redis.UniversalClient, stream, group string, n int) (Result, error) {
	return Consume(ctx, rdb, stream, group, n, 1, ReadFields, consumer.WithMinIdle(consumer.MinMinIdle), consumer.WithClaimInterval(time.Millisecond))
}
