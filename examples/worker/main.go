// Command worker shows what happens to an entry a handler cannot process: a
// consumer retries it after a short, growing delay (independent of crash
// detection), moves it to the dead-letter stream after its last allowed
// delivery, with its provenance; once the handler is fixed, the entry is
// redriven to its group, billing, and handled there, while the other group
// of the stream, email, which had handled it, never sees it again. It runs
// on an embedded miniredis, or on the server at REDIS_URL.
//
//	go run ./examples/worker
//	REDIS_URL=redis://localhost:6379/0 go run ./examples/worker
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/examples/internal/exampleredis"
)

// Order is one entry of the orders stream, as flat fields.
type Order struct {
	ID       int     `redis:"order"`
	Currency string  `redis:"currency"`
	Amount   float64 `redis:"amount"`
}

// maxDeliveries is how many times an entry is delivered before it is
// dead-lettered.
const maxDeliveries = 3

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, out io.Writer) error {
	rdb, where, closeAll, err := exampleredis.Connect(ctx)
	if err != nil {
		return err
	}
	defer closeAll()
	fmt.Fprintln(out, "using", where)

	// A hash tag keeps the stream and its dead-letter stream, {…}:dlq, in
	// one Redis Cluster slot: moves and redrives are then atomic.
	stream := fmt.Sprintf("{worker:orders:%d}", time.Now().UnixNano())
	dlq, err := deadletter.New(rdb, stream)
	if err != nil {
		return err
	}
	defer rdb.Del(context.WithoutCancel(ctx), stream, dlq.Key(),
		deadletter.RedriveKey(stream, "billing"), deadletter.RedriveKey(stream, "email"),
		consumer.RetryKey(stream, "billing"))

	orders := []Order{{1, "EUR", 12.5}, {2, "USD", 30}, {3, "XTS", 99}, {4, "EUR", 7.25}}
	for _, o := range orders {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{
			"order", strconv.Itoa(o.ID), "currency", o.Currency, "amount", strconv.FormatFloat(o.Amount, 'f', -1, 64),
		}}).Err(); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "published %d orders; order 3 is in XTS, a currency the handler does not support yet\n", len(orders))

	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format, args...)
	}
	var supportXTS atomic.Bool // the "fix"
	var handled atomic.Int64
	handler := consumer.Typed(func(ctx context.Context, o Order, m *consumer.Message) error {
		if o.Currency == "XTS" && !supportXTS.Load() {
			say("  order %d failed (delivery %d of %d): currency XTS not supported\n", o.ID, m.Deliveries, maxDeliveries)
			return errors.New("currency XTS not supported")
		}
		say("  order %d handled: %.2f %s (delivery %d)\n", o.ID, o.Amount, o.Currency, m.Deliveries)
		handled.Add(1)
		return nil
	})
	// The email group sends one confirmation per order.
	var emailMu sync.Mutex
	emailed := map[int]int{}
	email := consumer.Typed(func(ctx context.Context, o Order, m *consumer.Message) error {
		emailMu.Lock()
		emailed[o.ID]++
		emailMu.Unlock()
		return nil
	})
	mailer, err := consumer.New(rdb, stream, "email", email, consumer.WithBlock(50*time.Millisecond))
	if err != nil {
		return err
	}
	mctx, stopMailer := context.WithCancel(ctx)
	mailerDone := make(chan error, 1)
	go func() { mailerDone <- mailer.Run(mctx) }()
	defer func() {
		stopMailer()
		<-mailerDone
	}()

	var stats consumer.Stats
	// start runs worker-1 of billing until the returned function is called.
	start := func() (stop func() error, err error) {
		c, err := consumer.New(rdb, stream, "billing", handler,
			consumer.WithName("worker-1"),
			consumer.WithConcurrency(1), consumer.WithBlock(50*time.Millisecond),
			// A fast retry for the demo (the default is 1s doubling to 5
			// minutes); crash detection keeps its default (30s).
			consumer.WithRetryDelay(100*time.Millisecond, time.Second),
			consumer.WithMaxDeliveries(maxDeliveries), consumer.WithDeadLetter(dlq))
		if err != nil {
			return nil, err
		}
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.Run(wctx) }()
		return func() error {
			cancel()
			err := <-done
			s := c.Stats()
			stats.Handled += s.Handled
			stats.Failed += s.Failed
			stats.Reclaimed += s.Reclaimed
			stats.DeadLettered += s.DeadLettered
			return err
		}, nil
	}

	fmt.Fprintf(out, "billing's worker-1 runs (retry after 100ms, then 200ms; dead-letter after %d deliveries); email's runs too:\n", maxDeliveries)
	stop, err := start()
	if err != nil {
		return err
	}
	err = waitFor(func() (bool, error) {
		n, err := dlq.Count(ctx)
		return n == 1 && handled.Load() == 3, err
	})
	if serr := stop(); err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("waiting for order 3 to be dead-lettered: %w", err)
	}

	entries, _, err := dlq.List(ctx, deadletter.ListOptions{})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "dead-letter stream %s holds %d entry:\n", dlq.Key(), len(entries))
	for _, e := range entries {
		fmt.Fprintf(out, "  %s: order %s, %s %s\n", e.ID, e.Fields["order"], e.Fields["amount"], e.Fields["currency"])
		fmt.Fprintf(out, "    from %s, group %s, consumer %s, original ID %s\n", e.Source, e.Group, e.Consumer, e.OriginalID)
		fmt.Fprintf(out, "    after %d deliveries: %s (at %s)\n", e.Deliveries, e.Error, e.Time.Format(time.TimeOnly))
	}
	pending, err := rdb.XPending(ctx, stream, "billing").Result()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "pending in the group: %d\n", pending.Count)

	supportXTS.Store(true)
	fmt.Fprintln(out, "fix deployed (XTS supported); redriving the dead-letter stream to billing only:")
	res, err := dlq.Redrive(ctx, deadletter.RedriveOptions{})
	if err != nil {
		return err
	}
	for _, e := range entries {
		fmt.Fprintf(out, "  %s -> %s in %s\n", e.ID, res.NewIDs[e.ID], deadletter.RedriveKey(stream, e.Group))
	}
	fmt.Fprintf(out, "redriven %d, skipped %d; worker-1 runs again:\n", res.Redriven, res.Skipped)
	if stop, err = start(); err != nil {
		return err
	}
	err = waitFor(func() (bool, error) { return handled.Load() == int64(len(orders)), nil })
	if serr := stop(); err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("waiting for the redriven order: %w", err)
	}

	left, err := dlq.Count(ctx)
	if err != nil {
		return err
	}
	pending, err = rdb.XPending(ctx, stream, "billing").Result()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "done: %d orders handled, %d failed calls, %d reclaimed, %d dead-lettered; %d pending, %d in the dead-letter stream\n",
		stats.Handled, stats.Failed, stats.Reclaimed, stats.DeadLettered, pending.Count, left)
	emailMu.Lock()
	defer emailMu.Unlock()
	fmt.Fprintf(out, "email sent %d confirmations; order 3's %d time(s): the redrive did not reach it\n", len(emailed), emailed[3])
	return nil
}

// waitFor polls cond for up to 10 seconds.
func waitFor(cond func() (bool, error)) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
