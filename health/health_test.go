package health_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/health"
)

func TestHealthRejectsBadArguments(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		client redis.UniversalClient
		stream string
		opts   []health.Option
		want   error
	}{
		{"nil client", nil, "s", nil, midstream.ErrInvalidOption},
		{"empty stream", rdb, "", nil, midstream.ErrInvalidStream},
		{"control character", rdb, "s\n", nil, midstream.ErrInvalidStream},
		{"nil option", rdb, "s", []health.Option{nil}, midstream.ErrInvalidOption},
		{"newline in dead-letter key", rdb, "s", []health.Option{health.WithDeadLetterKey("s:dlq\n")}, midstream.ErrInvalidOption},
		{"empty group", rdb, "s", []health.Option{health.WithGroups("a", "")}, midstream.ErrInvalidOption},
		{"newline in group", rdb, "s", []health.Option{health.WithGroups("a\n")}, midstream.ErrInvalidOption},
		{"negative interval", rdb, "s", []health.Option{health.WithMinInterval(-time.Second)}, midstream.ErrInvalidOption},
		{"interval above max", rdb, "s", []health.Option{health.WithMinInterval(health.MaxMinInterval + 1)}, midstream.ErrInvalidOption},
		{"interval MaxInt64", rdb, "s", []health.Option{health.WithMinInterval(math.MaxInt64)}, midstream.ErrInvalidOption},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := health.Snapshot(ctx, tc.client, tc.stream, tc.opts...); !errors.Is(err, tc.want) {
				t.Errorf("Snapshot: %v, want %v", err, tc.want)
			}
			if _, err := health.RegisterGauges(noop.NewMeterProvider(), tc.client, tc.stream, tc.opts...); !errors.Is(err, tc.want) {
				t.Errorf("RegisterGauges: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestHealthGaugesRegister(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	for _, mp := range []metric.MeterProvider{nil, noop.NewMeterProvider()} {
		reg, err := health.RegisterGauges(mp, rdb, "s", health.WithMinInterval(0))
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.Unregister(); err != nil {
			t.Fatal(err)
		}
	}
}
