// Command quickstart publishes typed events to a Redis stream and reads them
// back, on an embedded miniredis or on the server at REDIS_URL.
//
//	go run ./examples/quickstart
//	REDIS_URL=redis://localhost:6379/0 go run ./examples/quickstart
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/examples/internal/exampleredis"
	"github.com/midstream-go/midstream/producer"
)

// Activity is the article's activity event, stored as flat fields that any
// Redis client can read.
type Activity struct {
	UserID    string    `redis:"userId"`
	Action    string    `redis:"action"`
	Amount    float64   `redis:"amount"`
	Timestamp time.Time `redis:"timestamp,unixms"`
}

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

	stream := fmt.Sprintf("quickstart:activity:%d", time.Now().UnixNano())
	defer rdb.Del(ctx, stream)

	p, err := producer.New[Activity](rdb, stream, producer.WithTrim(producer.Trim{MaxLen: 10_000, Approx: true}))
	if err != nil {
		return err
	}
	now := time.Now()
	id, err := p.Publish(ctx, Activity{UserID: "123", Action: "purchase", Amount: 9.99, Timestamp: now})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "published 1 event as %s\n", id)

	ids, err := p.PublishBatch(ctx, []Activity{
		{UserID: "123", Action: "login", Timestamp: now},
		{UserID: "456", Action: "purchase", Amount: 24.5, Timestamp: now},
		{UserID: "789", Action: "logout", Timestamp: now},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "published %d more in one pipeline: %s … %s\n", len(ids), ids[0], ids[len(ids)-1])

	// Bad input is refused before anything is sent, with a clear error.
	tooBig, err := producer.New[map[string]string](rdb, stream, producer.WithMaxEntrySize(64))
	if err != nil {
		return err
	}
	if _, err := tooBig.Publish(ctx, map[string]string{"blob": string(make([]byte, 100))}); errors.Is(err, midstream.ErrTooLarge) {
		fmt.Fprintln(out, "refused an oversized entry:", err)
	}

	// Read the stream back: the fields are flat, as redis-cli shows them.
	codec, err := midstream.NewFlatCodec[Activity]()
	if err != nil {
		return err
	}
	msgs, err := rdb.XRange(ctx, stream, "-", "+").Result()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "read %d entries back:\n", len(msgs))
	for _, m := range msgs {
		fields := make(map[string]string, len(m.Values))
		for k, v := range m.Values {
			fields[k], _ = v.(string)
		}
		var a Activity
		if err := codec.Decode(fields, &a); err != nil {
			return err
		}
		fmt.Fprintf(out, "  %s  user %-3s %-8s amount %5.2f\n", m.ID, a.UserID, a.Action, a.Amount)
	}
	return nil
}
