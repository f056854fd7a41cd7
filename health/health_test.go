package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"reflect"
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

func TestJSONRoundTrip(t *testing.T) {
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	h := health.StreamHealth{Stream: "{o}", Length: 12, LastID: "5-0", EntriesAdded: 14, Time: at,
		DeadLetter: health.DeadLetterHealth{Key: "{o}:dlq", Length: 1},
		Groups: []health.GroupHealth{
			{Name: "a", ConsumerCount: 1, Pending: 2, OldestPendingID: "1-0", OldestPendingAge: 1500 * time.Millisecond,
				OldestPendingIdle: 900 * time.Millisecond, OldestPendingDeliveries: 3, LastDeliveredID: "4-0",
				EntriesRead: 6, EntriesReadKnown: true, Lag: 6, LagKnown: true,
				Consumers: []health.ConsumerHealth{{Name: "w", Pending: 2, Idle: 900 * time.Millisecond, Inactive: -time.Millisecond}}},
			{Name: "b"},
		}}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"stream":"{o}","length":12,"last_id":"5-0","entries_added":14,"time":"2024-01-02T03:04:05Z",` +
		`"dead_letter":{"key":"{o}:dlq","length":1},"groups":[{"name":"a","consumer_count":1,"pending":2,` +
		`"oldest_pending_id":"1-0","oldest_pending_age_ms":1500,"oldest_pending_idle_ms":900,` +
		`"oldest_pending_deliveries":3,"last_delivered_id":"4-0","entries_read":6,"lag":6,` +
		`"consumers":[{"name":"w","pending":2,"idle_ms":900,"inactive_ms":-1}]},{"name":"b","consumer_count":0,"pending":0,` +
		`"oldest_pending_id":"","oldest_pending_age_ms":0,"oldest_pending_idle_ms":0,` +
		`"oldest_pending_deliveries":0,"last_delivered_id":"","entries_read":null,"lag":null,"consumers":null}]}`
	if string(b) != want {
		t.Fatalf("JSON\n got %s\nwant %s", b, want)
	}
	var back health.StreamHealth
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, h) {
		t.Fatalf("round trip\n got %+v\nwant %+v", back, h)
	}
}

func TestPartitionedRejectsBadArguments(t *testing.T) {
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
		{"nil option", rdb, "s", []health.Option{nil}, midstream.ErrInvalidOption},
		{"dead-letter key", rdb, "s", []health.Option{health.WithDeadLetterKey("s:dlq")}, midstream.ErrInvalidOption},
		{"empty group", rdb, "s", []health.Option{health.WithGroups("")}, midstream.ErrInvalidOption},
		{"negative interval", rdb, "s", []health.Option{health.WithMinInterval(-time.Second)}, midstream.ErrInvalidOption},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := health.SnapshotPartitioned(ctx, tc.client, tc.stream, tc.opts...); !errors.Is(err, tc.want) {
				t.Errorf("SnapshotPartitioned: %v, want %v", err, tc.want)
			}
			if _, err := health.RegisterPartitionedGauges(noop.NewMeterProvider(), tc.client, tc.stream, tc.opts...); !errors.Is(err, tc.want) {
				t.Errorf("RegisterPartitionedGauges: %v, want %v", err, tc.want)
			}
		})
	}
	// A dead-letter key set and reset is the default again.
	reg, err := health.RegisterPartitionedGauges(nil, rdb, "s", health.WithDeadLetterKey("x"), health.WithDeadLetterKey(""))
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
}

func TestPartitionedJSONRoundTrip(t *testing.T) {
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	p := health.PartitionedHealth{Stream: "o", Time: at,
		Partitions: []health.StreamHealth{
			{Stream: "o:{0}", Length: 2, LastID: "2-0", EntriesAdded: 2, Time: at,
				DeadLetter: health.DeadLetterHealth{Key: "o:{0}:dlq", Length: 1},
				Groups:     []health.GroupHealth{{Name: "g", Pending: 1, Lag: 1, LagKnown: true}}},
			{Stream: "o:{1}", Time: at, DeadLetter: health.DeadLetterHealth{Key: "o:{1}:dlq"}},
		},
		Total: health.StreamHealth{Stream: "o", Length: 2, EntriesAdded: 2, Time: at,
			DeadLetter: health.DeadLetterHealth{Length: 1},
			Groups:     []health.GroupHealth{{Name: "g", Pending: 1}}},
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	const group = `"consumer_count":0,"pending":1,"oldest_pending_id":"","oldest_pending_age_ms":0,` +
		`"oldest_pending_idle_ms":0,"oldest_pending_deliveries":0,"last_delivered_id":"","entries_read":null,`
	const want = `{"stream":"o","time":"2024-01-02T03:04:05Z",` +
		`"total":{"stream":"o","length":2,"last_id":"","entries_added":2,"time":"2024-01-02T03:04:05Z",` +
		`"dead_letter":{"key":"","length":1},"groups":[{"name":"g",` + group + `"lag":null,"consumers":null}]},` +
		`"partitions":[{"stream":"o:{0}","length":2,"last_id":"2-0","entries_added":2,"time":"2024-01-02T03:04:05Z",` +
		`"dead_letter":{"key":"o:{0}:dlq","length":1},"groups":[{"name":"g",` + group + `"lag":1,"consumers":null}]},` +
		`{"stream":"o:{1}","length":0,"last_id":"","entries_added":0,"time":"2024-01-02T03:04:05Z",` +
		`"dead_letter":{"key":"o:{1}:dlq","length":0},"groups":[]}]}`
	if string(b) != want {
		t.Fatalf("JSON\n got %s\nwant %s", b, want)
	}
	var back health.PartitionedHealth
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	back.Partitions[1].Groups = nil // [] in JSON, nil in p
	if !reflect.DeepEqual(back, p) {
		t.Fatalf("round trip\n got %+v\nwant %+v", back, p)
	}
}

// TestPartitionedJSONErrors: a partition that could not be read is named in
// the JSON (its error's text; null for the others), so a partial snapshot
// is not taken for a healthy one, and it comes back as an error.
func TestPartitionedJSONErrors(t *testing.T) {
	p := health.PartitionedHealth{Stream: "o",
		Partitions: []health.StreamHealth{{Stream: "o:{0}"}, {Stream: "o:{1}"}},
		Errors:     []error{nil, errors.New("dial tcp 127.0.0.1:7001: connect: connection refused")}}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Errors []*string `json:"errors"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw.Errors) != 2 || raw.Errors[0] != nil || raw.Errors[1] == nil || *raw.Errors[1] != p.Errors[1].Error() {
		t.Fatalf("errors in the JSON: %s", b)
	}
	var back health.PartitionedHealth
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Errors) != 2 || back.Errors[0] != nil || back.Errors[1] == nil || back.Errors[1].Error() != p.Errors[1].Error() {
		t.Fatalf("errors read back: %v", back.Errors)
	}
}
