// Command retention shows trimming that never deletes unread work. A stream
// of 1000 events has two consumer groups: indexer, fast, and mailer, which
// lags. A trimmer keeps the stream to its last 100 events, except what a
// group still needs: the output shows it holding events back for the
// lagging group (for its pending events, then for those it has not been
// delivered), and trimming to the policy once the group catches up.
//
//	go run ./examples/retention
//	REDIS_URL=redis://localhost:6379/0 go run ./examples/retention
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/examples/internal/exampleredis"
	"github.com/midstream-go/midstream/producer"
	"github.com/midstream-go/midstream/trim"
)

// Event is one event of the stream, stored as flat fields.
type Event struct {
	N    int    `redis:"n"`
	Kind string `redis:"kind"`
}

const events = 1000

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

	stream := fmt.Sprintf("retention:events:%d", time.Now().UnixNano())
	defer rdb.Del(ctx, stream)
	// Both groups exist before the first event, and start from the beginning.
	for _, g := range []string{"indexer", "mailer"} {
		if err := rdb.XGroupCreateMkStream(ctx, stream, g, "0").Err(); err != nil {
			return err
		}
	}
	p, err := producer.New[Event](rdb, stream)
	if err != nil {
		return err
	}
	batch := make([]Event, events)
	for i := range batch {
		batch[i] = Event{N: i + 1, Kind: "signup"}
	}
	ids, err := p.PublishBatch(ctx, batch)
	if err != nil {
		return err
	}
	number := make(map[string]int, len(ids)) // entry ID -> event number
	for i, id := range ids {
		number[id] = i + 1
	}
	fmt.Fprintf(out, "published %d events; policy: keep the last 100, never what a group still needs\n", events)

	// The trimmer runs in the background for the whole program. Its
	// reports come here one at a time: while main does not read them, it
	// waits, so each phase below ends with the trimmer's view of it.
	tctx, stopTrimmer := context.WithCancel(ctx)
	reports := make(chan trim.Result)
	t, err := trim.New(rdb, trim.Policy{MaxLen: 100}, trim.WithStreams(stream),
		trim.WithInterval(20*time.Millisecond),
		trim.WithReport(func(r trim.Result, err error) {
			if err != nil {
				log.Printf("trim: %v", err)
				return
			}
			select {
			case reports <- r:
			case <-tctx.Done():
			}
		}))
	if err != nil {
		stopTrimmer()
		return err
	}
	trimmerDone := make(chan error, 1)
	go func() { trimmerDone <- t.Run(tctx) }()
	defer func() {
		stopTrimmer()
		<-trimmerDone
	}()

	// settle reads reports until one pass, started after the last change,
	// trims nothing more, and prints what the passes did meanwhile.
	settle := func() error {
		var trimmed int64
		for n := 1; ; n++ {
			var r trim.Result
			select {
			case r = <-reports:
			case <-time.After(30 * time.Second):
				return errors.New("no report from the trimmer")
			}
			trimmed += r.Trimmed
			if n < 2 || r.Trimmed > 0 {
				continue
			}
			held := "nothing held back"
			if len(r.HeldBackBy) > 0 {
				var by []string
				for _, h := range r.HeldBackBy {
					by = append(by, fmt.Sprintf("%s (%s, from event #%d)", h.Group, h.Reason, number[h.Until]))
				}
				held = fmt.Sprintf("held back %d for %s", r.HeldBack, strings.Join(by, ", "))
			}
			fmt.Fprintf(out, "  trimmer: trimmed %d, %d left; %s\n", trimmed, r.Len, held)
			return nil
		}
	}

	fmt.Fprintln(out, "neither group has read anything yet:")
	if err := settle(); err != nil {
		return err
	}

	fmt.Fprintln(out, "indexer handles all 1000 events:")
	if err := consume(ctx, rdb, stream, "indexer", "indexer-1", events); err != nil {
		return err
	}
	if err := settle(); err != nil {
		return err
	}

	fmt.Fprintln(out, "mailer-1 reads 300 events, acknowledges 250 and stalls:")
	read, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: "mailer", Consumer: "mailer-1", Streams: []string{stream, ">"}, Count: 300, Block: -1,
	}).Result()
	if err != nil {
		return err
	}
	var got []string
	for _, m := range read[0].Messages {
		got = append(got, m.ID)
	}
	if err := rdb.XAck(ctx, stream, "mailer", got[:250]...).Err(); err != nil {
		return err
	}
	if err := settle(); err != nil {
		return err
	}

	fmt.Fprintln(out, "mailer-1 acknowledges the 50 it still held:")
	if err := rdb.XAck(ctx, stream, "mailer", got[250:]...).Err(); err != nil {
		return err
	}
	if err := settle(); err != nil {
		return err
	}

	fmt.Fprintln(out, "mailer catches up:")
	if err := consume(ctx, rdb, stream, "mailer", "mailer-1", events-300); err != nil {
		return err
	}
	return settle()
}

// consume runs a consumer of group until it has handled n events.
func consume(ctx context.Context, rdb *redis.Client, stream, group, name string, n int64) error {
	var handled atomic.Int64
	c, err := consumer.New(rdb, stream, group,
		consumer.Typed(func(ctx context.Context, e Event, m *consumer.Message) error {
			handled.Add(1)
			return nil
		}),
		consumer.WithName(name), consumer.WithBlock(50*time.Millisecond))
	if err != nil {
		return err
	}
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(cctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for handled.Load() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		return err
	}
	if h := handled.Load(); h < n {
		return fmt.Errorf("%s handled %d events of %d", group, h, n)
	}
	return nil
}
