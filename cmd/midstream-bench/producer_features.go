package main

import (
	"context"
	"fmt"
	"log"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/producer"
)

// featureEvent is a ~100-byte entry in one field, like the other publish
// measurements'.
func featureEvent(i int) map[string]string {
	return map[string]string{"data": `{"id":` + strconv.Itoa(i) + `,"user":"user-42","action":"checkout","amount":"19.99","comment":"bench entry"}`}
}

// featurePublish publishes n events from writers goroutines and returns
// the rate; key, when set, gives each event an idempotency key.
func featurePublish(ctx context.Context, p *producer.Producer[map[string]string], n, writers int, key func(i int) string) float64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	start := time.Now()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				var opts []producer.PublishOption
				if key != nil {
					opts = append(opts, producer.IdempotencyKey(key(i)))
				}
				if _, err := p.Publish(ctx, featureEvent(i), opts...); err != nil {
					failed.Store(&err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		log.Fatal(*err)
	}
	return float64(n) / time.Since(start).Seconds()
}

// idempotent compares Publish with an idempotency key (new keys: every
// call adds) against plain Publish, alternating runs, medians reported.
func (b *runner) idempotent(seqN, n int) {
	fmt.Printf("\nidempotent publish: ~100-byte events, a new key per call (window %s)\n", producer.DefaultIdempotencyWindow)
	for _, w := range []struct{ writers, n int }{{1, seqN}, {16, n}} {
		var plain, keyed []float64
		for round := range b.rounds {
			p := b.featureProducer(b.key("plain"))
			plain = append(plain, featurePublish(b.ctx, p, w.n, w.writers, nil))
			b.rdb.FlushDB(b.ctx)
			p = b.featureProducer(b.key("idem"))
			prefix := strconv.Itoa(round) + ":"
			keyed = append(keyed, featurePublish(b.ctx, p, w.n, w.writers, func(i int) string { return prefix + strconv.Itoa(i) }))
			b.rdb.FlushDB(b.ctx)
		}
		ps, ks := median(plain), median(keyed)
		fmt.Printf("  %-40s plain %9.0f/s   idempotent %9.0f/s   ratio %.2f\n",
			fmt.Sprintf("%d goroutine(s): Publish", w.writers), ps, ks, ks/ps)
	}
	// The memory each remembered key holds.
	stream := b.key("idem-mem")
	p := b.featureProducer(stream)
	key := "order-00000000-0000-0000-0000-000000000000" // a UUID-sized key
	if _, err := p.Publish(b.ctx, featureEvent(0), producer.IdempotencyKey(key)); err != nil {
		log.Fatal(err)
	}
	if mem, err := b.rdb.MemoryUsage(b.ctx, producer.IdempotencyStateKey(stream, key)).Result(); err == nil {
		fmt.Printf("  memory per remembered key (MEMORY USAGE, %d-byte key, %d-byte stream name): %d bytes\n", len(key), len(stream), mem)
	}
	b.rdb.FlushDB(b.ctx)
}

func (b *runner) featureProducer(stream string) *producer.Producer[map[string]string] {
	p, err := producer.New[map[string]string](b.rdb, stream)
	if err != nil {
		log.Fatal(err)
	}
	return p
}

// delayed offers PublishIn at a fixed rate for dur, each entry due after
// a fixed delay (the mover always knows the next due time), then after
// delays spread over a second (entries due before the mover's next planned
// pass arrive: the poll interval bounds their lateness), with one Scheduler (default settings) moving them, and
// reports how late entries became visible: the end of the millisecond of
// the moved entry's ID (the server's clock when it was added to the
// stream; an upper bound) minus its due time (the local clock before
// PublishIn, plus the delay; one clock on one machine).
func (b *runner) delayed(dur time.Duration) {
	const after = 200 * time.Millisecond
	fmt.Printf("\ndelayed entries: PublishIn(%s unless said otherwise) paced for %s, one Scheduler (poll %s, batch %d)\n", after, dur, producer.DefaultPollInterval, producer.DefaultMoveBatch)
	fixed := func() time.Duration { return after }
	spread := func() time.Duration { return time.Duration(rand.Int64N(int64(time.Second))) }
	for _, run := range []struct {
		rate   int
		what   string
		delays func() time.Duration
	}{
		{1_000, "", fixed}, {10_000, "", fixed},
		{1_000, ", delays spread over [0, 1s)", spread}, {10_000, ", delays spread over [0, 1s)", spread},
	} {
		lat, sent, err := delayedRun(b.ctx, b.rdb, b.key("delayed"), run.rate, dur, run.delays)
		if err != nil {
			log.Fatal(err)
		}
		slices.Sort(lat)
		q := func(f float64) time.Duration { return lat[min(int(f*float64(len(lat))), len(lat)-1)] }
		fmt.Printf("  offered %6d/s%s: stored %7.0f/s   moved %d/%d   lateness p50 %-6s p99 %-6s max %s\n", run.rate, run.what,
			float64(sent)/dur.Seconds(), len(lat), sent, q(0.5), q(0.99), q(1))
		b.rdb.FlushDB(b.ctx)
	}
}

// delayedRun is one paced run of delayed; it returns each moved entry's
// lateness and how many entries were stored.
func delayedRun(ctx context.Context, rdb *redis.Client, stream string, rate int, dur time.Duration, delays func() time.Duration) ([]time.Duration, int, error) {
	p, err := producer.New[map[string]string](rdb, stream)
	if err != nil {
		return nil, 0, err
	}
	s, err := producer.NewScheduler(rdb, stream)
	if err != nil {
		return nil, 0, err
	}
	moveCtx, stopMoving := context.WithCancel(ctx)
	moverDone := make(chan error, 1)
	go func() { moverDone <- s.Run(moveCtx) }()

	// Pace: every millisecond, hand out the sends due by then to 32
	// writers; sends that find every writer busy are dropped, so the
	// stored rate may fall short of the offered one.
	const writers = 32
	work := make(chan struct{}, writers)
	var wg sync.WaitGroup
	var sent atomic.Int64
	var failed atomic.Pointer[error]
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				after := delays()
				due := time.Now().Add(after)
				v := map[string]string{"due": strconv.FormatInt(due.UnixMicro(), 10), "data": "delayed bench entry"}
				if _, err := p.PublishIn(ctx, v, after); err != nil {
					failed.Store(&err)
					continue
				}
				sent.Add(1)
			}
		}()
	}
	start := time.Now()
	offered := 0
	for elapsed := time.Duration(0); elapsed < dur; elapsed = time.Since(start) {
		for target := int(elapsed.Seconds() * float64(rate)); offered < target; offered++ {
			select {
			case work <- struct{}{}:
			default:
			}
		}
		time.Sleep(time.Millisecond)
	}
	close(work)
	wg.Wait()
	if err := failed.Load(); err != nil {
		stopMoving()
		return nil, 0, *err
	}
	// Wait for the last entries to be moved, then read the stream.
	want := sent.Load()
	deadline := time.Now().Add(15 * time.Second)
	for rdb.XLen(ctx, stream).Val() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	stopMoving()
	if err := <-moverDone; err != nil {
		return nil, 0, err
	}
	var lat []time.Duration
	from := "-"
	for {
		es, err := rdb.XRangeN(ctx, stream, from, "+", 10_000).Result()
		if err != nil {
			return nil, 0, err
		}
		for _, e := range es {
			id, err := midstream.ParseID(e.ID)
			if err != nil {
				return nil, 0, err
			}
			dueUs, _ := strconv.ParseInt(fmt.Sprint(e.Values["due"]), 10, 64)
			// The ID counts whole milliseconds: the end of its
			// millisecond bounds the time the entry was added.
			lat = append(lat, time.Duration(int64(id.Ms+1)*1000-dueUs)*time.Microsecond)
		}
		if len(es) < 10_000 {
			break
		}
		from = "(" + es[len(es)-1].ID
	}
	if len(lat) == 0 {
		return nil, 0, fmt.Errorf("no delayed entry was moved")
	}
	return lat, int(want), nil
}
