package health_test

import (
	"context"
	"fmt"
	"log"

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
