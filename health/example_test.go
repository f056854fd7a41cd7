package health_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"time"

	"github.com/redis/go-redis/v9"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/midstream-go/midstream/health"
)

// A snapshot of a stream's groups, for a status page or a check.
func ExampleSnapshot() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()

	h, err := health.Snapshot(ctx, rdb, "{orders}")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %d entries, %d dead letters\n", h.Stream, h.Length, h.DeadLetter.Length)
	for _, g := range h.Groups {
		lag := "unknown"
		if g.LagKnown {
			lag = fmt.Sprint(g.Lag)
		}
		fmt.Printf("  group %s: lag %s, pending %d (oldest %s old), %d consumers\n",
			g.Name, lag, g.Pending, g.OldestPendingAge, len(g.Consumers))
	}
}

// Health gauges for a stream no consumer of this process reads, exported
// through any OpenTelemetry reader (here a Prometheus or OTLP reader would
// go where the manual reader is).
func ExampleRegisterGauges() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))

	reg, err := health.RegisterGauges(mp, rdb, "{orders}", health.WithGroups("billing"))
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Unregister()
}

// The JSON form of a snapshot, as the midstream command prints it.
func ExampleStreamHealth_MarshalJSON() {
	h := health.StreamHealth{Stream: "{orders}", Length: 3, LastID: "1700000000002-0", EntriesAdded: 3,
		Time:       time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		DeadLetter: health.DeadLetterHealth{Key: "{orders}:dlq"},
		Groups: []health.GroupHealth{{Name: "billing", ConsumerCount: 1, Pending: 1,
			OldestPendingID: "1700000000000-0", OldestPendingAge: 1500 * time.Millisecond,
			LastDeliveredID: "1700000000000-0", Lag: 2, LagKnown: true}}}
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(b))
	// Output:
	// {
	//   "stream": "{orders}",
	//   "length": 3,
	//   "last_id": "1700000000002-0",
	//   "entries_added": 3,
	//   "time": "2024-01-01T00:00:00Z",
	//   "dead_letter": {
	//     "key": "{orders}:dlq",
	//     "length": 0
	//   },
	//   "groups": [
	//     {
	//       "name": "billing",
	//       "consumer_count": 1,
	//       "pending": 1,
	//       "oldest_pending_id": "1700000000000-0",
	//       "oldest_pending_age_ms": 1500,
	//       "oldest_pending_idle_ms": 0,
	//       "oldest_pending_deliveries": 0,
	//       "last_delivered_id": "1700000000000-0",
	//       "entries_read": null,
	//       "lag": 2,
	//       "consumers": null
	//     }
	//   ]
	// }
}
