package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/health"
	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/internal/delay"
	"github.com/midstream-go/midstream/producer"
)

// envMover makes a process started by startWorker run a producer.Scheduler
// on STREAM (batch BATCH_SIZE) instead of a consumer; see moverMain.
const envMover = "MIDSTREAM_TEST_MOVER"

func init() {
	if os.Getenv(envWorker) == "1" && os.Getenv(envMover) == "1" {
		os.Exit(moverMain())
	}
}

// moverMain runs a Scheduler until the process is killed.
func moverMain() int {
	opts, err := redis.ParseURL(os.Getenv(envWorkerAddr))
	if err != nil {
		opts = &redis.Options{Addr: os.Getenv(envWorkerAddr)}
	}
	rdb := redis.NewClient(opts)
	batch, _ := strconv.Atoi(os.Getenv(envWorkerBatch))
	s, err := producer.NewScheduler(rdb, os.Getenv(envWorkerStream), producer.WithMoveBatch(batch))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Println(workerReadyLine)
	if err := s.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// scheduleN stores n delayed entries {"n": i} due after delayOf(i).
func scheduleN(t *testing.T, p *producer.Producer[map[string]string], n int, delayOf func(i int) time.Duration) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		id, err := p.PublishIn(context.Background(), map[string]string{"n": strconv.Itoa(i)}, delayOf(i))
		if err != nil {
			t.Fatalf("PublishIn %d: %v", i, err)
		}
		ids[i] = id
	}
	return ids
}

// checkOnce checks that the stream holds each of the n values exactly once
// and that the delay set is empty.
func checkOnce(t *testing.T, rdb redis.UniversalClient, stream string, n int) []redis.XMessage {
	t.Helper()
	ctx := context.Background()
	entries, err := rdb.XRange(ctx, stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]int, n)
	for _, e := range entries {
		i, err := strconv.Atoi(fmt.Sprint(e.Values["n"]))
		if err != nil || i < 0 || i >= n {
			t.Fatalf("entry %s: unexpected fields %v", e.ID, e.Values)
		}
		seen[i]++
	}
	for i, c := range seen {
		if c != 1 {
			t.Fatalf("value %d in the stream %d times, want once", i, c)
		}
	}
	k := delay.KeysOf(stream)
	if z, h := rdb.ZCard(ctx, k.Set).Val(), rdb.HLen(ctx, k.Data).Val(); z != 0 || h != 0 {
		t.Fatalf("delay set holds %d entries, %d payloads after all moved", z, h)
	}
	return entries
}

// TestDelayedOrderAndCancel stores entries with shuffled delays, cancels
// some, then moves them: the rest appear in order of due time (ties in the
// order stored), none before its due time by the server's clock, the
// cancelled never.
func TestDelayedOrderAndCancel(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream := srv.Key("delayed")
	p := newProducer[map[string]string](t, srv.Client, stream)
	const n = 200
	delays := rand.Perm(n)
	ids := scheduleN(t, p, n, func(i int) time.Duration { return time.Duration(delays[i]%50) * 10 * time.Millisecond })
	k := delay.KeysOf(stream)
	due := map[string]float64{}
	for i, id := range ids {
		due[strconv.Itoa(i)] = srv.Client.ZScore(ctx, k.Set, id).Val()
	}
	cancelled := map[string]bool{}
	for i := 0; i < n; i += 10 {
		ok, err := p.Cancel(ctx, ids[i])
		if err != nil || !ok {
			t.Fatalf("Cancel %s: %v, %v", ids[i], ok, err)
		}
		cancelled[strconv.Itoa(i)] = true
		if ok, err := p.Cancel(ctx, ids[i]); err != nil || ok {
			t.Fatalf("second Cancel %s: %v, %v; want false", ids[i], ok, err)
		}
	}
	if _, err := p.Cancel(ctx, "not-an-id"); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Fatalf("Cancel of a malformed ID: %v", err)
	}

	s, err := producer.NewScheduler(srv.Client, stream, producer.WithMoveBatch(7), producer.WithPollInterval(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	waitFor(t, 15*time.Second, "every entry moved", func() bool {
		return srv.Client.ZCard(ctx, k.Set).Val() == 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := s.Moved(); got != n-int64(len(cancelled)) {
		t.Fatalf("Moved() = %d, want %d", got, n-len(cancelled))
	}
	entries, err := srv.Client.XRange(ctx, stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != n-len(cancelled) {
		t.Fatalf("%d entries, want %d", len(entries), n-len(cancelled))
	}
	prev := -1.0
	for _, e := range entries {
		v := fmt.Sprint(e.Values["n"])
		if cancelled[v] {
			t.Fatalf("cancelled entry %s moved", v)
		}
		if due[v] < prev {
			t.Fatalf("entry %s due %v moved after one due %v", v, due[v], prev)
		}
		prev = due[v]
		id, _ := midstream.ParseID(e.ID)
		if float64(id.Ms) < due[v] {
			t.Fatalf("entry %s added at %d ms, before its due time %v", v, id.Ms, due[v])
		}
	}
	// A moved entry can no longer be cancelled.
	if ok, err := p.Cancel(ctx, ids[1]); err != nil || ok {
		t.Fatalf("Cancel after the move: %v, %v", ok, err)
	}
}

// TestDelayedOptions covers what PublishIn refuses and what it keeps.
func TestDelayedOptions(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream := srv.Key("delayopts")
	p := newProducer[map[string]string](t, srv.Client, stream, producer.WithHeaders(map[string]string{"app": "x"}))
	v := map[string]string{"n": "0"}
	for name, opt := range map[string]producer.PublishOption{
		"ID": producer.ID("1-1"), "key": producer.IdempotencyKey("k"),
	} {
		if _, err := p.PublishIn(ctx, v, time.Second, opt); !errors.Is(err, midstream.ErrInvalidOption) {
			t.Fatalf("%s: %v, want ErrInvalidOption", name, err)
		}
	}
	if _, err := p.PublishIn(ctx, v, producer.MaxDelay+time.Hour); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Fatalf("delay past MaxDelay: %v", err)
	}
	if _, err := p.PublishIn(ctx, map[string]string{}, 0); err == nil {
		t.Fatal("empty entry accepted")
	}
	// Headers (static and per call) and binary values survive the move; a
	// time in the past is due at once.
	bin := string([]byte{0, 0xff, '\n', 0x80})
	if _, err := p.PublishAt(ctx, map[string]string{"n": bin}, time.Now().Add(-time.Hour), producer.Header("h", "1")); err != nil {
		t.Fatal(err)
	}
	s, err := producer.NewScheduler(srv.Client, stream)
	if err != nil {
		t.Fatal(err)
	}
	moved, next, err := s.MoveDue(ctx)
	if err != nil || moved != 1 || next != -1 {
		t.Fatalf("MoveDue: %d, %v, %v; want 1, -1, nil", moved, next, err)
	}
	e, err := srv.Client.XRange(ctx, stream, "-", "+").Result()
	if err != nil || len(e) != 1 {
		t.Fatalf("XRANGE: %v %v", e, err)
	}
	want := map[string]any{"n": bin, midstream.HeaderPrefix + "app": "x", midstream.HeaderPrefix + "h": "1"}
	if fmt.Sprint(e[0].Values) != fmt.Sprint(want) {
		t.Fatalf("moved entry %q, want %q", e[0].Values, want)
	}
	// A payload that does not decode (written by something else) is
	// appended as is, not dropped.
	k := delay.KeysOf(stream)
	srv.Client.ZAdd(ctx, k.Set, redis.Z{Score: 1, Member: "00000000000000000000"})
	srv.Client.HSet(ctx, k.Data, "00000000000000000000", "5:abc")
	if moved, _, err := s.MoveDue(ctx); err != nil || moved != 1 {
		t.Fatalf("MoveDue of a bad payload: %d, %v", moved, err)
	}
	last, err := srv.Client.XRevRangeN(ctx, stream, "+", "-", 1).Result()
	if err != nil || len(last) != 1 || last[0].Values["midstream:delayed"] != "5:abc" {
		t.Fatalf("bad payload moved as %v, %v", last, err)
	}
	// MoveDue reports the time to the next due entry.
	if _, err := p.PublishIn(ctx, v, time.Hour); err != nil {
		t.Fatal(err)
	}
	if moved, next, err := s.MoveDue(ctx); err != nil || moved != 0 || next < 59*time.Minute || next > time.Hour {
		t.Fatalf("MoveDue: %d, %v, %v; want 0, ~1h", moved, next, err)
	}
	for _, o := range []producer.SchedulerOption{producer.WithMoveBatch(-1), producer.WithMoveBatch(producer.MaxMoveBatch + 1),
		producer.WithPollInterval(time.Microsecond), producer.WithPollInterval(time.Hour), nil} {
		if _, err := producer.NewScheduler(srv.Client, stream, o); !errors.Is(err, midstream.ErrInvalidOption) {
			t.Fatalf("bad option accepted: %v", err)
		}
	}
}

// TestDelayedMoversRace has four movers (two Schedulers running, two
// goroutines calling MoveDue) race over the same due entries: each moved
// exactly once.
func TestDelayedMoversRace(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream := srv.Key("race")
	p := newProducer[map[string]string](t, srv.Client, stream)
	const n = 3000
	scheduleN(t, p, n, func(i int) time.Duration { return time.Duration(i%30) * 10 * time.Millisecond })
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var total [4]int64
	for m := range 4 {
		s, err := producer.NewScheduler(srv.NewClient(), stream, producer.WithMoveBatch(5), producer.WithPollInterval(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { total[m] = s.Moved() }()
			if m < 2 {
				if err := s.Run(runCtx); err != nil {
					t.Errorf("Run: %v", err)
				}
				return
			}
			for runCtx.Err() == nil {
				if _, _, err := s.MoveDue(runCtx); err != nil && runCtx.Err() == nil {
					t.Errorf("MoveDue: %v", err)
					return
				}
			}
		}()
	}
	k := delay.KeysOf(stream)
	waitFor(t, 30*time.Second, "every entry moved", func() bool { return srv.Client.ZCard(ctx, k.Set).Val() == 0 })
	cancel()
	wg.Wait()
	checkOnce(t, srv.Client, stream, n)
	if sum := total[0] + total[1] + total[2] + total[3]; sum != n {
		t.Fatalf("movers report %v moved, %d in all; want %d", total, sum, n)
	}
	t.Logf("moved per mover: %v", total)
}

// TestDelayedMoverKilled SIGKILLs mover processes over and over while they
// move: no entry is lost or moved twice.
func TestDelayedMoverKilled(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream := srv.Key("killed")
	p := newProducer[map[string]string](t, srv.Client, stream)
	const n = 20_000
	pipeline := 500
	for from := 0; from < n; from += pipeline {
		var wg sync.WaitGroup
		errs := make(chan error, pipeline)
		for i := from; i < min(from+pipeline, n); i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := p.PublishIn(ctx, map[string]string{"n": strconv.Itoa(i)}, 0); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	k := delay.KeysOf(stream)
	kills := 0
	for round := 0; srv.Client.ZCard(ctx, k.Set).Val() > 0; round++ {
		if round > 200 {
			t.Fatalf("entries still waiting after %d rounds", round)
		}
		env := map[string]string{envMover: "1", envWorkerStream: stream, envWorkerBatch: "10"}
		a := startWorker(t, srv, fmt.Sprintf("mover-%d-a", round), env)
		b := startWorker(t, srv, fmt.Sprintf("mover-%d-b", round), env)
		time.Sleep(time.Duration(20+rand.IntN(60)) * time.Millisecond)
		a.Kill()
		b.Kill()
		kills += 2
	}
	checkOnce(t, srv.Client, stream, n)
	t.Logf("%d movers killed", kills)
}

// TestDelayedHealth checks the delay set's size and overdue age in
// health.Snapshot and the gauges.
func TestDelayedHealth(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream := srv.Key("delayhealth")
	p := newProducer[map[string]string](t, srv.Client, stream)
	if _, err := p.Publish(ctx, map[string]string{"n": "now"}); err != nil {
		t.Fatal(err)
	}
	h, err := health.Snapshot(ctx, srv.Client, stream)
	if err != nil {
		t.Fatal(err)
	}
	if h.Delayed.Size != 0 || h.Delayed.Overdue != 0 || h.Delayed.OldestOverdueAge != 0 || h.Delayed.Key != delay.KeysOf(stream).Set {
		t.Fatalf("empty delay set: %+v", h.Delayed)
	}
	scheduleN(t, p, 3, func(int) time.Duration { return 0 })
	scheduleN(t, p, 2, func(int) time.Duration { return time.Hour })
	time.Sleep(200 * time.Millisecond)
	h, err = health.Snapshot(ctx, srv.Client, stream)
	if err != nil {
		t.Fatal(err)
	}
	if h.Delayed.Size != 5 || h.Delayed.Overdue != 3 || h.Delayed.OldestOverdueAge < 150*time.Millisecond || h.Delayed.OldestOverdueAge > time.Minute {
		t.Fatalf("delay set: %+v; want 5 waiting, 3 overdue for about 200ms", h.Delayed)
	}

	mp, reader := otelMetrics(t)
	reg, err := health.RegisterGauges(mp, srv.Client, stream, health.WithMinInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = reg.Unregister() }()
	ms := otelCollect(t, reader)
	if v, ok := otelInt(ms, "midstream.delay.size"); !ok || v != 5 {
		t.Fatalf("midstream.delay.size = %d, %v; want 5", v, ok)
	}
	if g, ok := ms["midstream.delay.overdue_age"].(metricdata.Gauge[float64]); !ok || len(g.DataPoints) != 1 || g.DataPoints[0].Value < 0.15 || g.DataPoints[0].Value > 60 {
		t.Fatalf("midstream.delay.overdue_age = %+v", ms["midstream.delay.overdue_age"])
	}
}

// TestDelayedConsumerMoves checks that a consumer's Run moves its stream's
// delayed entries by default, and that WithoutScheduler turns that off.
func TestDelayedConsumerMoves(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	for _, off := range []bool{false, true} {
		stream := srv.Key(fmt.Sprintf("consumermoves-%v", off))
		p := newProducer[map[string]string](t, srv.Client, stream)
		if _, err := p.Publish(ctx, map[string]string{"n": "plain"}); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		got := map[string]int{}
		h := consumer.HandlerFunc(func(_ context.Context, m *consumer.Message) error {
			mu.Lock()
			got[m.Field("n")]++
			mu.Unlock()
			return nil
		})
		opts := []consumer.Option{consumer.WithStart(consumer.StartBeginning)}
		if off {
			opts = append(opts, consumer.WithoutScheduler())
		}
		stop := runConsumer(t, newConsumer(t, srv.Client, stream, "g", h, opts...))
		scheduleN(t, p, 20, func(i int) time.Duration { return time.Duration(i) * 10 * time.Millisecond })
		count := func() int {
			mu.Lock()
			defer mu.Unlock()
			return len(got)
		}
		if off {
			waitFor(t, 5*time.Second, "the plain entry", func() bool { return count() >= 1 })
			time.Sleep(500 * time.Millisecond)
			if n := srv.Client.ZCard(ctx, delay.KeysOf(stream).Set).Val(); n != 20 || count() != 1 {
				t.Fatalf("WithoutScheduler: %d delayed entries left, %d handled; want 20, 1", n, count())
			}
		} else {
			waitFor(t, 10*time.Second, "every delayed entry handled", func() bool { return count() == 21 })
		}
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		mu.Lock()
		for v, c := range got {
			if c != 1 {
				t.Fatalf("entry %s handled %d times", v, c)
			}
		}
		mu.Unlock()
	}
}
