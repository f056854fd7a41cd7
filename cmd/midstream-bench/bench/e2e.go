package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/producer"
)

// Flow is an end-to-end measurement: producers publishing with
// Producer.Publish, consumers handling with a typed handler that decodes
// each event.
type Flow struct {
	Sent, Handled int
	Elapsed       time.Duration
	// CPU is the process's CPU time while sending (producers and
	// consumers).
	CPU time.Duration
	// Latencies of handled events, publish call to handler call, sorted.
	Latencies []time.Duration
}

// Quantile returns the q-quantile of the latencies (0 if none).
func (f Flow) Quantile(q float64) time.Duration {
	if len(f.Latencies) == 0 {
		return 0
	}
	return f.Latencies[min(int(q*float64(len(f.Latencies))), len(f.Latencies)-1)]
}

// CPUPerEntry is the process's CPU time per entry sent.
func (f Flow) CPUPerEntry() time.Duration {
	if f.Sent == 0 {
		return 0
	}
	return f.CPU / time.Duration(f.Sent)
}

// SentRate and HandledRate are per second over the run.
func (f Flow) SentRate() float64    { return float64(f.Sent) / f.Elapsed.Seconds() }
func (f Flow) HandledRate() float64 { return float64(f.Handled) / f.Elapsed.Seconds() }

// recorder collects publish→handle latencies of events sent after from.
type recorder struct {
	from    int64
	handled atomic.Int64
	mu      sync.Mutex
	lat     []time.Duration
}

func newRecorder(warmup time.Duration) *recorder {
	return &recorder{from: time.Now().Add(warmup).UnixNano(), lat: make([]time.Duration, 0, 1<<20)}
}

func (r *recorder) record(e Event) {
	now := time.Now().UnixNano()
	r.handled.Add(1)
	if e.SentNs >= r.from {
		r.mu.Lock()
		r.lat = append(r.lat, time.Duration(now-e.SentNs))
		r.mu.Unlock()
	}
}

// Side is one side of an end-to-end comparison: how events are published
// and how they are consumed.
type Side struct {
	// publish sends e; run consumes until ctx ends, passing each event to
	// record.
	publish func(ctx context.Context, e Event) error
	run     func(ctx context.Context, record func(Event)) error
}

// RawSide is the hand-written side: XADD per event with fields encoded by
// hand, and consumers running the strongest loop (XREADGROUP COUNT 100
// BLOCK 100ms, h's work, one XACK per batch).
func RawSide(rdb redis.UniversalClient, stream string, consumers int, h Handler) Side {
	const group = "flow"
	return Side{
		publish: func(ctx context.Context, e Event) error {
			return rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: RawValues(e)}).Err()
		},
		run: func(ctx context.Context, record func(Event)) error {
			if err := rdb.XGroupCreateMkStream(ctx, stream, group, "0").Err(); err != nil {
				return err
			}
			var wg sync.WaitGroup
			errs := make(chan error, consumers)
			for c := range consumers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- rawLoop(ctx, rdb, stream, group, fmt.Sprintf("raw-%d", c), 100*time.Millisecond, h, record,
						func(int) {}, func() bool { return ctx.Err() != nil })
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// MidstreamSide is midstream's side: Producer.Publish and consumers with
// h's handler (opts added to their options).
func MidstreamSide(rdb redis.UniversalClient, stream string, consumers int, h Handler, opts ...consumer.Option) (Side, error) {
	p, err := producer.New[Event](rdb, stream, producer.WithCodec[Event](Codec))
	if err != nil {
		return Side{}, err
	}
	return Side{
		publish: func(ctx context.Context, e Event) error {
			_, err := p.Publish(ctx, e)
			return err
		},
		run: func(ctx context.Context, record func(Event)) error {
			var cs []*consumer.Consumer
			for range consumers {
				c, err := consumer.New(rdb, stream, "flow", h.handler(record), append([]consumer.Option{
					consumer.WithStart(consumer.StartBeginning), consumer.WithBlock(100 * time.Millisecond),
				}, opts...)...)
				if err != nil {
					return err
				}
				cs = append(cs, c)
			}
			var wg sync.WaitGroup
			for _, c := range cs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_ = c.Run(ctx)
				}()
			}
			wg.Wait()
			return nil
		},
	}, nil
}

// flowRun starts side's consumers, records latencies after warmup, and
// stops them when send returns and everything sent was handled (or after a
// grace period).
func flowRun(ctx context.Context, side Side, warmup time.Duration,
	send func(publish func(context.Context, Event) error) (int, time.Duration, error)) (Flow, error) {
	rec := newRecorder(warmup)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- side.run(runCtx, rec.record) }()
	// Let the consumers create the group and block before producing.
	time.Sleep(200 * time.Millisecond)
	clk := startClock()
	sent, elapsed, err := send(side.publish)
	if err != nil {
		return Flow{}, err
	}
	cpu := clk.result(sent).CPU
	handledAtEnd := int(rec.handled.Load())
	deadline := time.Now().Add(10 * time.Second)
	for int(rec.handled.Load()) < sent && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	stop()
	if err := <-runErr; err != nil {
		return Flow{}, err
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	slices.Sort(rec.lat)
	return Flow{Sent: sent, Handled: handledAtEnd, Elapsed: elapsed, CPU: cpu, Latencies: rec.lat}, nil
}

// Paced publishes at rate events per second for dur (from several
// goroutines, each sleeping until its events are due), with consumers
// handling them, and measures publish→handle latency after the first
// quarter second.
func Paced(ctx context.Context, side Side, rate int, dur time.Duration) (Flow, error) {
	const senders = 8
	return flowRun(ctx, side, 250*time.Millisecond, func(publish func(context.Context, Event) error) (int, time.Duration, error) {
		total := int(float64(rate) * dur.Seconds())
		interval := time.Second / time.Duration(rate)
		start := time.Now()
		r, err := parallel(total, senders, func(k int) error {
			if d := time.Until(start.Add(time.Duration(k) * interval)); d > 0 {
				time.Sleep(d)
			}
			e := NewEvent(k)
			e.SentNs = time.Now().UnixNano()
			return publish(ctx, e)
		})
		return r.N, r.Elapsed, err
	})
}

// Flat publishes as fast as writers goroutines can for dur, with consumers
// handling, and reports what was sent and handled during dur.
func Flat(ctx context.Context, side Side, writers int, dur time.Duration) (Flow, error) {
	return flowRun(ctx, side, dur/4, func(publish func(context.Context, Event) error) (int, time.Duration, error) {
		var sent atomic.Int64
		deadline := time.Now().Add(dur)
		start := time.Now()
		var wg sync.WaitGroup
		var firstErr atomic.Pointer[error]
		for range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; time.Now().Before(deadline); i++ {
					e := NewEvent(i)
					e.SentNs = time.Now().UnixNano()
					if err := publish(ctx, e); err != nil {
						firstErr.CompareAndSwap(nil, &err)
						return
					}
					sent.Add(1)
				}
			}()
		}
		wg.Wait()
		if e := firstErr.Load(); e != nil {
			return 0, 0, *e
		}
		return int(sent.Load()), time.Since(start), nil
	})
}

// parallel runs fn(k) for k in [0, n), goroutine g taking k ≡ g
// (mod workers) in order.
func parallel(n, workers int, fn func(k int) error) (Result, error) {
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	clk := startClock()
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := g; k < n && firstErr.Load() == nil; k += workers {
				if err := fn(k); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return Result{}, *e
	}
	return clk.result(n), nil
}
