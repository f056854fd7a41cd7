package deadletter_test

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/internal/keys"
)

func newMini(t *testing.T) (*miniredis.Miniredis, *redis.Client) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	return mr, rdb
}

func TestDeadletterNewValidation(t *testing.T) {
	_, rdb := newMini(t)
	for _, tc := range []struct {
		name   string
		client redis.UniversalClient
		source string
		opts   []deadletter.Option
		want   error // nil: New succeeds
	}{
		{"ok", rdb, "orders", nil, nil},
		{"ok key", rdb, "orders", []deadletter.Option{deadletter.WithKey("elsewhere:dlq")}, nil},
		{"ok logger", rdb, "orders", []deadletter.Option{deadletter.WithLogger(slog.Default())}, nil},
		{"nil client", nil, "orders", nil, midstream.ErrInvalidOption},
		{"empty source", rdb, "", nil, midstream.ErrInvalidStream},
		{"control char source", rdb, "orders\n", nil, midstream.ErrInvalidStream},
		{"empty key is the default", rdb, "orders", []deadletter.Option{deadletter.WithKey("")}, nil},
		{"newline key is a bad stream", rdb, "orders", []deadletter.Option{deadletter.WithKey("dlq\n")}, midstream.ErrInvalidStream},
		{"control char key", rdb, "orders", []deadletter.Option{deadletter.WithKey("dlq\x00")}, midstream.ErrInvalidOption},
		{"key is source", rdb, "orders", []deadletter.Option{deadletter.WithKey("orders")}, midstream.ErrInvalidOption},
		{"nil logger", rdb, "orders", []deadletter.Option{deadletter.WithLogger(nil)}, midstream.ErrInvalidOption},
		{"nil option", rdb, "orders", []deadletter.Option{nil}, midstream.ErrInvalidOption},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := deadletter.New(tc.client, tc.source, tc.opts...)
			if tc.want == nil {
				if err != nil || q == nil {
					t.Fatalf("New = %v, %v; want a Queue", q, err)
				}
				return
			}
			if !errors.Is(err, tc.want) || q != nil {
				t.Fatalf("New = %v, %v; want an error wrapping %v", q, err, tc.want)
			}
		})
	}
}

func TestDeadletterQueueKeys(t *testing.T) {
	_, rdb := newMini(t)
	for _, tc := range []struct {
		source string
		opts   []deadletter.Option
		key    string
		atomic bool
	}{
		{"orders", nil, "{orders}:dlq", true},
		{"{orders}", nil, "{orders}:dlq", true},
		{"orders", []deadletter.Option{deadletter.WithKey("elsewhere:dlq")}, "elsewhere:dlq", false},
		{"{orders}", []deadletter.Option{deadletter.WithKey("{orders}:failed")}, "{orders}:failed", true},
		{"orders", []deadletter.Option{deadletter.WithKey("")}, "{orders}:dlq", true},
		{"orders", []deadletter.Option{deadletter.WithKey("elsewhere:dlq"), deadletter.WithKey("")}, "{orders}:dlq", true},
	} {
		q, err := deadletter.New(rdb, tc.source, tc.opts...)
		if err != nil {
			t.Fatal(err)
		}
		if q.Source() != tc.source || q.Key() != tc.key || q.Atomic() != tc.atomic {
			t.Errorf("New(%q): Source %q Key %q Atomic %v; want %q %q %v",
				tc.source, q.Source(), q.Key(), q.Atomic(), tc.source, tc.key, tc.atomic)
		}
	}
}

func TestDeadletterKey(t *testing.T) {
	for _, tc := range []struct {
		stream, want string
		sameSlot     bool
	}{
		{"orders", "{orders}:dlq", true}, // whole name as the tag
		{"shop:orders", "{shop:orders}:dlq", true},
		{"{orders}", "{orders}:dlq", true},                 // tag kept
		{"shop:{orders}:v2", "shop:{orders}:v2:dlq", true}, // tag kept, anywhere
		{"{a}{b}", "{a}{b}:dlq", true},                     // the first tag counts
		{"a{b", "{a{b}:dlq", true},                         // '{' without '}': no tag, wrap works
		{"{}x", "{}x:dlq", false},                          // empty tag: cannot wrap
		{"a}b", "a}b:dlq", false},                          // a '}' would end the wrapped tag early
		{"x{}", "x{}:dlq", false},
	} {
		got := deadletter.Key(tc.stream)
		if got != tc.want {
			t.Errorf("Key(%q) = %q, want %q", tc.stream, got, tc.want)
		}
		if same := keys.SameSlot(tc.stream, got); same != tc.sameSlot {
			t.Errorf("SameSlot(%q, %q) = %v, want %v", tc.stream, got, same, tc.sameSlot)
		}
	}
}

func TestDeadletterParseEntry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   deadletter.Entry
	}{
		{
			name: "full",
			values: map[string]any{
				"orderId": "42", "traceparent": "00-abc-def-01", "header:tenant": "acme",
				deadletter.FieldStream: "orders", deadletter.FieldGroup: "billing",
				deadletter.FieldConsumer: "w1", deadletter.FieldID: "5-1",
				deadletter.FieldDeliveries: "7", deadletter.FieldError: "boom",
				deadletter.FieldTime: "1700000000123", "dlq:future": "x",
			},
			want: deadletter.Entry{
				Entry: midstream.Entry{Stream: "dlq", ID: "9-0", Fields: map[string]string{
					"orderId": "42", "traceparent": "00-abc-def-01", "header:tenant": "acme"}},
				Source: "orders", Group: "billing", Consumer: "w1", OriginalID: "5-1",
				Deliveries: 7, Error: "boom", Time: time.UnixMilli(1700000000123),
			},
		},
		{
			name:   "no provenance",
			values: map[string]any{"a": "1"},
			want:   deadletter.Entry{Entry: midstream.Entry{Stream: "dlq", ID: "9-0", Fields: map[string]string{"a": "1"}}},
		},
		{
			name: "garbled provenance",
			values: map[string]any{
				deadletter.FieldDeliveries: "many", deadletter.FieldTime: "yesterday",
				deadletter.FieldGroup: 17, deadletter.FieldError: nil, deadletter.FieldID: []byte("1-1"),
			},
			want: deadletter.Entry{Entry: midstream.Entry{Stream: "dlq", ID: "9-0", Fields: map[string]string{}},
				Group: "17", OriginalID: "1-1"},
		},
		{
			name:   "negative numbers",
			values: map[string]any{deadletter.FieldDeliveries: "-3", deadletter.FieldTime: "-5"},
			want:   deadletter.Entry{Entry: midstream.Entry{Stream: "dlq", ID: "9-0", Fields: map[string]string{}}},
		},
		{
			name:   "overflow",
			values: map[string]any{deadletter.FieldDeliveries: "99999999999999999999", deadletter.FieldTime: "1e3"},
			want:   deadletter.Entry{Entry: midstream.Entry{Stream: "dlq", ID: "9-0", Fields: map[string]string{}}},
		},
		{
			name:   "nil values",
			values: nil,
			want:   deadletter.Entry{Entry: midstream.Entry{Stream: "dlq", ID: "9-0", Fields: map[string]string{}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := deadletter.ParseEntry("dlq", redis.XMessage{ID: "9-0", Values: tc.values})
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseEntry =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestDeadletterArgumentValidation(t *testing.T) {
	_, rdb := newMini(t)
	q, err := deadletter.New(rdb, "orders")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		call func() error
		want error
	}{
		{"move no ID", func() error {
			_, err := q.Move(ctx, deadletter.MoveRequest{Group: "g", Consumer: "c"})
			return err
		}, midstream.ErrInvalidOption},
		{"move bad ID", func() error {
			_, err := q.Move(ctx, deadletter.MoveRequest{ID: "x-1", Group: "g", Consumer: "c"})
			return err
		}, midstream.ErrInvalidID},
		{"move no group", func() error {
			_, err := q.Move(ctx, deadletter.MoveRequest{ID: "1-1", Consumer: "c"})
			return err
		}, midstream.ErrInvalidOption},
		{"move no consumer", func() error {
			_, err := q.Move(ctx, deadletter.MoveRequest{ID: "1-1", Group: "g"})
			return err
		}, midstream.ErrInvalidOption},
		{"move negative deliveries", func() error {
			_, err := q.Move(ctx, deadletter.MoveRequest{ID: "1-1", Group: "g", Consumer: "c", Deliveries: -1})
			return err
		}, midstream.ErrInvalidOption},
		{"move negative min idle", func() error {
			_, err := q.Move(ctx, deadletter.MoveRequest{ID: "1-1", Group: "g", Consumer: "c", MinIdle: -time.Second})
			return err
		}, midstream.ErrInvalidOption},
		{"list negative limit", func() error {
			_, _, err := q.List(ctx, deadletter.ListOptions{Limit: -1})
			return err
		}, midstream.ErrInvalidOption},
		{"list limit too large", func() error {
			_, _, err := q.List(ctx, deadletter.ListOptions{Limit: deadletter.MaxListLimit + 1})
			return err
		}, midstream.ErrInvalidOption},
		{"list budget too large", func() error {
			_, _, err := q.List(ctx, deadletter.ListOptions{ScanBudget: deadletter.MaxScanBudget + 1})
			return err
		}, midstream.ErrInvalidOption},
		{"list huge limit", func() error {
			_, _, err := q.List(ctx, deadletter.ListOptions{Limit: math.MaxInt, ScanBudget: math.MaxInt})
			return err
		}, midstream.ErrInvalidOption},
		{"move control character in group", func() error {
			_, err := q.Move(ctx, deadletter.MoveRequest{ID: "1-1", Group: "g\n", Consumer: "c"})
			return err
		}, midstream.ErrInvalidOption},
		{"move control character in consumer", func() error {
			_, err := q.Move(ctx, deadletter.MoveRequest{ID: "1-1", Group: "g", Consumer: "c\x00"})
			return err
		}, midstream.ErrInvalidOption},
		{"list negative budget", func() error {
			_, _, err := q.List(ctx, deadletter.ListOptions{ScanBudget: -1})
			return err
		}, midstream.ErrInvalidOption},
		{"list bad cursor", func() error {
			_, _, err := q.List(ctx, deadletter.ListOptions{After: "+"})
			return err
		}, midstream.ErrInvalidID},
		{"get bad ID", func() error {
			_, _, err := q.Get(ctx, "nope")
			return err
		}, midstream.ErrInvalidID},
		{"delete bad ID", func() error {
			_, err := q.Delete(ctx, "1-1", "*")
			return err
		}, midstream.ErrInvalidOption},
		{"redrive negative rate", func() error {
			_, err := q.Redrive(ctx, deadletter.RedriveOptions{Rate: -1})
			return err
		}, midstream.ErrInvalidOption},
		{"redrive NaN rate", func() error {
			_, err := q.Redrive(ctx, deadletter.RedriveOptions{Rate: math.NaN()})
			return err
		}, midstream.ErrInvalidOption},
		{"redrive infinite rate", func() error {
			_, err := q.Redrive(ctx, deadletter.RedriveOptions{Rate: math.Inf(1)})
			return err
		}, midstream.ErrInvalidOption},
		{"redrive negative max", func() error {
			_, err := q.Redrive(ctx, deadletter.RedriveOptions{Max: -1})
			return err
		}, midstream.ErrInvalidOption},
		{"redrive to the DLQ", func() error {
			_, err := q.Redrive(ctx, deadletter.RedriveOptions{Target: q.Key()})
			return err
		}, midstream.ErrInvalidOption},
		{"redrive bad target", func() error {
			_, err := q.Redrive(ctx, deadletter.RedriveOptions{Target: "a\tb"})
			return err
		}, midstream.ErrInvalidStream},
		{"redrive IDs and filters", func() error {
			_, err := q.Redrive(ctx, deadletter.RedriveOptions{IDs: []string{"1-1"}, Group: "g"})
			return err
		}, midstream.ErrInvalidOption},
		{"redrive bad ID", func() error {
			_, err := q.Redrive(ctx, deadletter.RedriveOptions{IDs: []string{"1-1", "$"}})
			return err
		}, midstream.ErrInvalidID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want one wrapping %v", err, tc.want)
			}
		})
	}
}
