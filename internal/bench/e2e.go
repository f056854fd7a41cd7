package bench

import (
	"context"
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

// SentRate and HandledRate are per second over the run.
func (f Flow) SentRate() float64    { return float64(f.Sent) / f.Elapsed.Seconds() }
func (f Flow) HandledRate() float64 { return float64(f.Handled) / f.Elapsed.Seconds() }

// flowRun starts consumers on a fresh group of stream, records latencies
// after warmup, and stops them when send returns and everything sent was
// handled (or after a grace period).
func flowRun(ctx context.Context, rdb redis.UniversalClient, stream string, consumers int, warmup time.Duration,
	send func(p *producer.Producer[Event]) (int, time.Duration, error)) (Flow, error) {
	p, err := producer.New[Event](rdb, stream, producer.WithCodec[Event](Codec))
	if err != nil {
		return Flow{}, err
	}
	var mu sync.Mutex
	lat := make([]time.Duration, 0, 1<<20)
	var handled atomic.Int64
	recordFrom := time.Now().Add(warmup).UnixNano()
	h := consumer.TypedCodec[Event](Codec, func(_ context.Context, e Event, _ *consumer.Message) error {
		now := time.Now().UnixNano()
		handled.Add(1)
		if e.SentNs >= recordFrom {
			mu.Lock()
			lat = append(lat, time.Duration(now-e.SentNs))
			mu.Unlock()
		}
		return nil
	})
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	for range consumers {
		c, err := consumer.New(rdb, stream, "flow", h, consumer.WithStart(consumer.StartBeginning), consumer.WithBlock(100*time.Millisecond))
		if err != nil {
			return Flow{}, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.Run(runCtx)
		}()
	}
	// Let the consumers create the group and block before producing.
	time.Sleep(200 * time.Millisecond)
	sent, elapsed, err := send(p)
	if err != nil {
		return Flow{}, err
	}
	handledAtEnd := int(handled.Load())
	deadline := time.Now().Add(10 * time.Second)
	for int(handled.Load()) < sent && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	stop()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	return Flow{Sent: sent, Handled: handledAtEnd, Elapsed: elapsed, Latencies: lat}, nil
}

// Paced publishes at rate events per second for dur (from several
// goroutines, each sleeping until its events are due), with consumers
// handling them, and measures publish→handle latency after the first
// quarter second.
func Paced(ctx context.Context, rdb redis.UniversalClient, stream string, rate int, dur time.Duration, consumers int) (Flow, error) {
	const senders = 8
	return flowRun(ctx, rdb, stream, consumers, 250*time.Millisecond, func(p *producer.Producer[Event]) (int, time.Duration, error) {
		total := int(float64(rate) * dur.Seconds())
		interval := time.Second / time.Duration(rate)
		start := time.Now()
		r, err := parallel(total, senders, func(k int) error {
			if d := time.Until(start.Add(time.Duration(k) * interval)); d > 0 {
				time.Sleep(d)
			}
			e := NewEvent(k)
			e.SentNs = time.Now().UnixNano()
			_, err := p.Publish(ctx, e)
			return err
		})
		return r.N, r.Elapsed, err
	})
}

// Flat publishes as fast as writers goroutines can for dur, with consumers
// handling, and reports what was sent and handled during dur.
func Flat(ctx context.Context, rdb redis.UniversalClient, stream string, writers, consumers int, dur time.Duration) (Flow, error) {
	return flowRun(ctx, rdb, stream, consumers, dur/4, func(p *producer.Producer[Event]) (int, time.Duration, error) {
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
					if _, err := p.Publish(ctx, e); err != nil {
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
	start := time.Now()
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
	return Result{N: n, Elapsed: time.Since(start)}, nil
}
