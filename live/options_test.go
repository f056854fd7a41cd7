package live_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/live"
)

func TestSubscribeRejectsBadArguments(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	tests := []struct {
		name    string
		client  redis.UniversalClient
		stream  string
		channel string
		from    string
		opts    []live.Option
		want    error
	}{
		{"nil client", nil, "s", "c", live.Now, nil, midstream.ErrInvalidOption},
		{"empty stream", rdb, "", "c", live.Now, nil, midstream.ErrInvalidStream},
		{"empty channel", rdb, "s", "", live.Now, nil, midstream.ErrInvalidOption},
		{"bad from", rdb, "s", "c", "x-1", nil, midstream.ErrInvalidID},
		{"empty from", rdb, "s", "c", "", nil, midstream.ErrInvalidID},
		{"nil option", rdb, "s", "c", live.Now, []live.Option{nil}, midstream.ErrInvalidOption},
		{"newline in channel", rdb, "s", "c\n", live.Now, nil, midstream.ErrInvalidOption},
		{"negative page size", rdb, "s", "c", live.Now, []live.Option{live.WithPageSize(-1)}, midstream.ErrInvalidOption},
		{"page size above max", rdb, "s", "c", live.Now, []live.Option{live.WithPageSize(live.MaxPageSize + 1)}, midstream.ErrInvalidOption},
		{"page size MaxInt", rdb, "s", "c", live.Now, []live.Option{live.WithPageSize(math.MaxInt)}, midstream.ErrInvalidOption},
		{"page size 1e9", rdb, "s", "c", live.Now, []live.Option{live.WithPageSize(1e9)}, midstream.ErrInvalidOption},
		{"negative poll", rdb, "s", "c", live.Now, []live.Option{live.WithPollInterval(-1)}, midstream.ErrInvalidOption},
		{"poll under 1ms", rdb, "s", "c", live.Now, []live.Option{live.WithPollInterval(time.Microsecond)}, midstream.ErrInvalidOption},
		{"poll above max", rdb, "s", "c", live.Now, []live.Option{live.WithPollInterval(live.MaxPollInterval + 1)}, midstream.ErrInvalidOption},
		{"poll MaxInt64", rdb, "s", "c", live.Now, []live.Option{live.WithPollInterval(math.MaxInt64)}, midstream.ErrInvalidOption},
		{"nil filter", rdb, "s", "c", live.Now, []live.Option{live.WithFilter(nil)}, midstream.ErrInvalidOption},
		{"nil logger", rdb, "s", "c", live.Now, []live.Option{live.WithLogger(nil)}, midstream.ErrInvalidOption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := live.Subscribe(ctx, tt.client, tt.stream, tt.channel, tt.from, tt.opts...)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if s != nil {
				t.Fatal("got a subscription with an error")
			}
		})
	}
}

func TestSubscribeAcceptsGoodOptions(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	s, err := live.Subscribe(context.Background(), rdb, "s", "c", live.Beginning,
		live.WithPageSize(1), live.WithPollInterval(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Last(); got != "0-0" {
		t.Errorf("Last = %q, want 0-0", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-s.C(); ok {
		t.Fatal("C still open after Close")
	}
}

func TestSubscribeAcceptsZerosAndBounds(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	for _, opts := range [][]live.Option{
		{live.WithPageSize(0), live.WithPollInterval(0)},
		{live.WithPageSize(live.MaxPageSize), live.WithPollInterval(live.MaxPollInterval)},
	} {
		s, err := live.Subscribe(context.Background(), rdb, "s", "c", live.Beginning, opts...)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
	}
}
