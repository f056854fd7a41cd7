package integration

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/internal/keys"
)

// dlQueue returns a dead-letter Queue for source, failing the test on error.
func dlQueue(t *testing.T, rdb redis.UniversalClient, source string, opts ...deadletter.Option) *deadletter.Queue {
	t.Helper()
	q, err := deadletter.New(rdb, source, opts...)
	if err != nil {
		t.Fatalf("deadletter.New: %v", err)
	}
	return q
}

// dlPending adds entries with the given fields to stream, creates group
// (from the start) and reads them all as consumer, so they are pending for
// it. It returns the entries as read.
func dlPending(t *testing.T, rdb redis.UniversalClient, stream, group, consumer string, entries ...map[string]string) []redis.XMessage {
	t.Helper()
	ctx := context.Background()
	for _, f := range entries {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: f}).Err(); err != nil {
			t.Fatalf("XADD: %v", err)
		}
	}
	if err := rdb.XGroupCreate(ctx, stream, group, "0").Err(); err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
		t.Fatalf("XGROUP CREATE: %v", err)
	}
	res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: group, Consumer: consumer, Streams: []string{stream, ">"}, Count: int64(len(entries)),
	}).Result()
	if err != nil {
		t.Fatalf("XREADGROUP: %v", err)
	}
	if len(res) != 1 || len(res[0].Messages) != len(entries) {
		t.Fatalf("XREADGROUP got %v, want %d entries", res, len(entries))
	}
	return res[0].Messages
}

// dlPendingIDs returns the IDs pending in group, by consumer.
func dlPendingIDs(t *testing.T, rdb redis.UniversalClient, stream, group string) map[string]string {
	t.Helper()
	p, err := rdb.XPendingExt(context.Background(), &redis.XPendingExtArgs{
		Stream: stream, Group: group, Start: "-", End: "+", Count: 100000,
	}).Result()
	if err != nil {
		t.Fatalf("XPENDING: %v", err)
	}
	out := make(map[string]string, len(p))
	for _, e := range p {
		out[e.ID] = e.Consumer
	}
	return out
}

// dlFill adds n entries straight to the dead-letter stream q.Key(), with
// explicit IDs "<from+i>-0" (so entry i was "dead-lettered" at millisecond
// from+i) and provenance from prov(i). Each entry's only original field is
// n=i.
func dlFill(t *testing.T, rdb redis.UniversalClient, q *deadletter.Queue, from, n int, prov func(i int) (group, reason string)) []string {
	t.Helper()
	ctx := context.Background()
	ids := make([]string, 0, n)
	for start := 0; start < n; start += 500 {
		pipe := rdb.Pipeline()
		for i := start; i < min(start+500, n); i++ {
			group, reason := prov(i)
			id := strconv.Itoa(from+i) + "-0"
			ids = append(ids, id)
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: q.Key(), ID: id, Values: []string{
				"n", strconv.Itoa(i),
				deadletter.FieldStream, q.Source(), deadletter.FieldGroup, group,
				deadletter.FieldConsumer, "c", deadletter.FieldID, strconv.Itoa(i+1) + "-0",
				deadletter.FieldDeliveries, "3", deadletter.FieldError, reason,
				deadletter.FieldTime, strconv.Itoa(from + i),
			}})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatalf("filling the DLQ: %v", err)
		}
	}
	return ids
}

func dlSameProv(group, reason string) func(int) (string, string) {
	return func(int) (string, string) { return group, reason }
}

// dlOtherSlotKey returns a key made unique by srv that is not in source's
// cluster slot.
func dlOtherSlotKey(t *testing.T, srv *redistest.Server, source string) string {
	t.Helper()
	for i := range 100 {
		k := srv.Key(fmt.Sprintf("elsewhere%d:dlq", i))
		if !keys.SameSlot(source, k) {
			return k
		}
	}
	t.Fatal("no key outside the source's slot")
	return ""
}

// TestDeadletterMoveOnce: Move writes one DLQ entry with the original fields
// and full provenance, and acknowledges the source entry; repeating it
// writes nothing.
func TestDeadletterMoveOnce(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	src := srv.Key("orders")
	q := dlQueue(t, srv.Client, src)
	if !q.Atomic() || q.Key() != "{"+src+"}:dlq" {
		t.Fatalf("Key %q Atomic %v, want {%s}:dlq, true", q.Key(), q.Atomic(), src)
	}
	original := map[string]string{
		"orderId": "42", "amount": "9.99", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"header:tenant": "acme",
	}
	withStale := maps.Clone(original)
	withStale[deadletter.FieldError] = "an older failure" // replaced, not kept
	msgs := dlPending(t, srv.Client, src, "billing", "worker-1", withStale, original)

	before := time.Now()
	for i, m := range msgs {
		moved, err := q.Move(ctx, deadletter.MoveRequest{
			ID: m.ID, Fields: stringFields(m.Values), Group: "billing", Consumer: "worker-1",
			Deliveries: int64(5 * i), // 0 for the first: the server's count (1) is recorded
			Reason:     "handler: permanent failure " + strconv.Itoa(i),
		})
		if err != nil || !moved {
			t.Fatalf("Move %s = %v, %v; want moved", m.ID, moved, err)
		}
	}
	after := time.Now()
	if p := dlPendingIDs(t, srv.Client, src, "billing"); len(p) != 0 {
		t.Fatalf("still pending after Move: %v", p)
	}
	raw, err := srv.Client.XRange(ctx, q.Key(), "-", "+").Result()
	if err != nil || len(raw) != 2 {
		t.Fatalf("DLQ holds %v, %v; want 2 entries", raw, err)
	}
	for i, m := range raw {
		got := stringFields(m.Values)
		ms, err := strconv.ParseInt(got[deadletter.FieldTime], 10, 64)
		if err != nil || ms < before.UnixMilli() || ms > after.UnixMilli() {
			t.Errorf("entry %d: %s = %q, want a time between %d and %d", i, deadletter.FieldTime, got[deadletter.FieldTime], before.UnixMilli(), after.UnixMilli())
		}
		delete(got, deadletter.FieldTime)
		want := maps.Clone(original)
		want[deadletter.FieldStream] = src
		want[deadletter.FieldGroup] = "billing"
		want[deadletter.FieldConsumer] = "worker-1"
		want[deadletter.FieldID] = msgs[i].ID
		want[deadletter.FieldDeliveries] = []string{"1", "5"}[i]
		want[deadletter.FieldError] = "handler: permanent failure " + strconv.Itoa(i)
		if !maps.Equal(got, want) {
			t.Errorf("DLQ entry %d:\n got %v\nwant %v", i, got, want)
		}
		e, ok, err := q.Get(ctx, m.ID)
		if err != nil || !ok {
			t.Fatalf("Get %s = %v, %v", m.ID, ok, err)
		}
		if e.ID != m.ID || e.Stream != q.Key() || e.Source != src || e.OriginalID != msgs[i].ID ||
			e.Group != "billing" || e.Consumer != "worker-1" || e.Deliveries != []int64{1, 5}[i] ||
			!maps.Equal(e.Fields, original) || e.Time.Before(before.Truncate(time.Millisecond)) || e.Time.After(after) {
			t.Errorf("Get %s = %+v", m.ID, e)
		}
	}
	// Again: nothing is pending any more, so nothing is written.
	for _, m := range msgs {
		moved, err := q.Move(ctx, deadletter.MoveRequest{ID: m.ID, Fields: stringFields(m.Values), Group: "billing", Consumer: "worker-1"})
		if err != nil || moved {
			t.Fatalf("second Move %s = %v, %v; want not moved", m.ID, moved, err)
		}
	}
	if n := xlen(t, srv.Client, q.Key()); n != 2 {
		t.Fatalf("DLQ length %d after repeated moves, want 2", n)
	}
	if _, ok, err := q.Get(ctx, "1-1"); ok || err != nil {
		t.Fatalf("Get of a missing ID = %v, %v", ok, err)
	}
}

// TestDeadletterMoveNotOwner: an entry claimed by another consumer is not
// moved by its former owner; its new owner moves it.
func TestDeadletterMoveNotOwner(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	src := srv.Key("{orders}")
	q := dlQueue(t, srv.Client, src)
	m := dlPending(t, srv.Client, src, "g", "old", map[string]string{"k": "v"})[0]
	if err := srv.Client.XClaim(ctx, &redis.XClaimArgs{Stream: src, Group: "g", Consumer: "new", Messages: []string{m.ID}}).Err(); err != nil {
		t.Fatalf("XCLAIM: %v", err)
	}
	req := deadletter.MoveRequest{ID: m.ID, Fields: stringFields(m.Values), Group: "g", Consumer: "old", Reason: "late"}
	if moved, err := q.Move(ctx, req); err != nil || moved {
		t.Fatalf("Move by the former owner = %v, %v; want not moved", moved, err)
	}
	if n := xlen(t, srv.Client, q.Key()); n != 0 {
		t.Fatalf("DLQ length %d, want 0", n)
	}
	if p := dlPendingIDs(t, srv.Client, src, "g"); p[m.ID] != "new" {
		t.Fatalf("pending %v, want %s owned by new", p, m.ID)
	}
	req.Consumer = "new"
	if moved, err := q.Move(ctx, req); err != nil || !moved {
		t.Fatalf("Move by the owner = %v, %v; want moved", moved, err)
	}
	if n := xlen(t, srv.Client, q.Key()); n != 1 {
		t.Fatalf("DLQ length %d, want 1", n)
	}
	e, _, _ := q.Get(ctx, srv.Client.XRange(ctx, q.Key(), "-", "+").Val()[0].ID)
	if e.Consumer != "new" || e.Deliveries != 2 { // XCLAIM counts a delivery
		t.Fatalf("DLQ entry consumer %q deliveries %d, want new, 2", e.Consumer, e.Deliveries)
	}
}

// TestDeadletterMoveMinIdle: with MinIdle, an entry idle for less is not
// moved, on both paths.
func TestDeadletterMoveMinIdle(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	for _, sameSlot := range []bool{true, false} {
		src := srv.Key(fmt.Sprintf("orders%v", sameSlot))
		var opts []deadletter.Option
		if !sameSlot {
			opts = append(opts, deadletter.WithKey(dlOtherSlotKey(t, srv, src)))
		}
		q := dlQueue(t, srv.Client, src, opts...)
		m := dlPending(t, srv.Client, src, "g", "c", map[string]string{"k": "v"})[0]
		req := deadletter.MoveRequest{ID: m.ID, Fields: stringFields(m.Values), Group: "g", Consumer: "c", MinIdle: time.Hour}
		if moved, err := q.Move(ctx, req); err != nil || moved {
			t.Fatalf("atomic %v: Move of a fresh entry with MinIdle 1h = %v, %v; want not moved", q.Atomic(), moved, err)
		}
		time.Sleep(60 * time.Millisecond)
		req.MinIdle = 50 * time.Millisecond
		if moved, err := q.Move(ctx, req); err != nil || !moved {
			t.Fatalf("atomic %v: Move after 60ms with MinIdle 50ms = %v, %v; want moved", q.Atomic(), moved, err)
		}
		if n := xlen(t, srv.Client, q.Key()); n != 1 {
			t.Fatalf("DLQ length %d, want 1", n)
		}
	}
}

// TestDeadletterMoveAcked: an acknowledged entry, an entry never delivered
// and an ID that does not exist are not moved; a missing group is Redis's
// NOGROUP error.
func TestDeadletterMoveAcked(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	src := srv.Key("orders")
	q := dlQueue(t, srv.Client, src)
	m := dlPending(t, srv.Client, src, "g", "c", map[string]string{"k": "v"})[0]
	if err := srv.Client.XAck(ctx, src, "g", m.ID).Err(); err != nil {
		t.Fatal(err)
	}
	undelivered, err := srv.Client.XAdd(ctx, &redis.XAddArgs{Stream: src, Values: []string{"k", "w"}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{m.ID, undelivered, "1-1"} {
		moved, err := q.Move(ctx, deadletter.MoveRequest{ID: id, Fields: map[string]string{"k": "v"}, Group: "g", Consumer: "c"})
		if err != nil || moved {
			t.Fatalf("Move %s = %v, %v; want not moved", id, moved, err)
		}
	}
	if n := xlen(t, srv.Client, q.Key()); n != 0 {
		t.Fatalf("DLQ length %d, want 0", n)
	}
	_, err = q.Move(ctx, deadletter.MoveRequest{ID: m.ID, Group: "nope", Consumer: "c"})
	if !redis.HasErrorPrefix(errors.Unwrap(err), "NOGROUP") {
		t.Fatalf("Move with a missing group: %v, want NOGROUP", err)
	}
}

// TestDeadletterMoveOtherSlot: with the DLQ in another cluster slot, Move
// takes separate commands and still moves once, and only for the owner.
func TestDeadletterMoveOtherSlot(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	src := srv.Key("orders")
	dlqKey := dlOtherSlotKey(t, srv, src)
	q := dlQueue(t, srv.Client, src, deadletter.WithKey(dlqKey))
	if q.Atomic() || keys.SameSlot(src, q.Key()) {
		t.Fatalf("Atomic() = %v for %s and %s", q.Atomic(), src, q.Key())
	}
	msgs := dlPending(t, srv.Client, src, "g", "c", map[string]string{"a": "1"}, map[string]string{"a": "2"}, map[string]string{"a": "3"})
	if err := srv.Client.XAck(ctx, src, "g", msgs[1].ID).Err(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Client.XClaim(ctx, &redis.XClaimArgs{Stream: src, Group: "g", Consumer: "other", Messages: []string{msgs[2].ID}}).Err(); err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		moved, err := q.Move(ctx, deadletter.MoveRequest{ID: m.ID, Fields: stringFields(m.Values), Group: "g", Consumer: "c", Reason: "r"})
		if err != nil || moved != (i == 0) {
			t.Fatalf("Move %d = %v, %v; want moved only for entry 0", i, moved, err)
		}
	}
	if p := dlPendingIDs(t, srv.Client, src, "g"); len(p) != 1 || p[msgs[2].ID] != "other" {
		t.Fatalf("pending %v, want only %s (other)", p, msgs[2].ID)
	}
	entries, next, err := q.List(ctx, deadletter.ListOptions{})
	if err != nil || next != "" || len(entries) != 1 {
		t.Fatalf("List = %v, %q, %v; want one entry", entries, next, err)
	}
	if e := entries[0]; e.OriginalID != msgs[0].ID || e.Fields["a"] != "1" || e.Deliveries != 1 || e.Source != src {
		t.Fatalf("DLQ entry %+v", e)
	}
	// Redrive from another slot: XADD (with its marker) then XDEL, to the
	// group's redrive stream.
	res, err := q.Redrive(ctx, deadletter.RedriveOptions{})
	if err != nil || res.Redriven != 1 || len(res.NewIDs) != 1 {
		t.Fatalf("Redrive = %+v, %v", res, err)
	}
	if n := xlen(t, srv.Client, q.Key()); n != 0 {
		t.Fatalf("DLQ length %d after redrive, want 0", n)
	}
	back := srv.Client.XRange(ctx, deadletter.RedriveKey(src, "g"), res.NewIDs[entries[0].ID], res.NewIDs[entries[0].ID]).Val()
	if len(back) != 1 || !maps.Equal(stringFields(back[0].Values), map[string]string{"a": "1"}) {
		t.Fatalf("redriven entry %v", back)
	}
}

// TestDeadletterLargeEntry: an entry with more fields than a Lua script can
// pass to XADD still moves and redrives (through separate commands).
func TestDeadletterLargeEntry(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	src := srv.Key("big")
	q := dlQueue(t, srv.Client, src)
	fields := make(map[string]string, 5000)
	for i := range 5000 {
		fields["f"+strconv.Itoa(i)] = strconv.Itoa(i)
	}
	m := dlPending(t, srv.Client, src, "g", "c", fields)[0]
	moved, err := q.Move(ctx, deadletter.MoveRequest{ID: m.ID, Fields: stringFields(m.Values), Group: "g", Consumer: "c", Reason: "too big"})
	if err != nil || !moved {
		t.Fatalf("Move = %v, %v", moved, err)
	}
	if p := dlPendingIDs(t, srv.Client, src, "g"); len(p) != 0 {
		t.Fatalf("pending %v", p)
	}
	entries, _, err := q.List(ctx, deadletter.ListOptions{})
	if err != nil || len(entries) != 1 || !maps.Equal(entries[0].Fields, fields) {
		t.Fatalf("List: %d entries, %v", len(entries), err)
	}
	res, err := q.Redrive(ctx, deadletter.RedriveOptions{})
	if err != nil || res.Redriven != 1 {
		t.Fatalf("Redrive = %+v, %v", res, err)
	}
	back := srv.Client.XRange(ctx, deadletter.RedriveKey(src, "g"), res.NewIDs[entries[0].ID], res.NewIDs[entries[0].ID]).Val()
	if len(back) != 1 || !maps.Equal(stringFields(back[0].Values), fields) {
		t.Fatalf("redriven entry has %d entries", len(back))
	}
}

// dlListAll pages through List with opts until next is "", failing if the
// pages overlap or go backwards.
func dlListAll(t *testing.T, q *deadletter.Queue, opts deadletter.ListOptions) (ids []string, pages int) {
	t.Helper()
	var prev midstream.ID
	for {
		entries, next, err := q.List(context.Background(), opts)
		if err != nil {
			t.Fatalf("List %+v: %v", opts, err)
		}
		pages++
		if len(entries) > max(opts.Limit, 0) && opts.Limit > 0 {
			t.Fatalf("List returned %d entries, limit %d", len(entries), opts.Limit)
		}
		for _, e := range entries {
			id, err := midstream.ParseID(e.ID)
			if err != nil || id.Compare(prev) <= 0 {
				t.Fatalf("entry %s after %s", e.ID, prev)
			}
			prev = id
			ids = append(ids, e.ID)
		}
		if next == "" {
			return ids, pages
		}
		if pages > 10000 {
			t.Fatal("List does not end")
		}
		opts.After = next
	}
}

// TestDeadletterListPagination: paging covers every entry once, in order,
// and the last page says there is nothing more.
func TestDeadletterListPagination(t *testing.T) {
	srv := redistest.Start(t)
	q := dlQueue(t, srv.Client, srv.Key("orders"))
	if ids, pages := dlListAll(t, q, deadletter.ListOptions{}); len(ids) != 0 || pages != 1 {
		t.Fatalf("empty DLQ: %d entries in %d pages", len(ids), pages)
	}
	all := dlFill(t, srv.Client, q, 1000, 250, dlSameProv("g", "boom"))
	for _, tc := range []struct{ limit, pages int }{{0, 3}, {7, 36}, {50, 5}, {250, 1}, {1000, 1}, {1, 250}} {
		ids, pages := dlListAll(t, q, deadletter.ListOptions{Limit: tc.limit})
		if !slices.Equal(ids, all) || pages != tc.pages {
			t.Errorf("limit %d: %d entries in %d pages, want %d in %d", tc.limit, len(ids), pages, len(all), tc.pages)
		}
	}
	// The cursor is exclusive, and need not be an existing ID.
	entries, next, err := q.List(context.Background(), deadletter.ListOptions{After: "1100-0", Limit: 2})
	if err != nil || len(entries) != 2 || entries[0].ID != "1101-0" || next != "1102-0" {
		t.Fatalf("List after 1100-0 = %v, %q, %v", entries, next, err)
	}
	entries, _, err = q.List(context.Background(), deadletter.ListOptions{After: "1100", Limit: 1})
	if err != nil || len(entries) != 1 || entries[0].ID != "1101-0" {
		t.Fatalf("List after 1100 = %v, %v", entries, err)
	}
	entries, _, err = q.List(context.Background(), deadletter.ListOptions{After: "1100-5", Limit: 1})
	if err != nil || len(entries) != 1 || entries[0].ID != "1101-0" {
		t.Fatalf("List after 1100-5 = %v, %v", entries, err)
	}
}

// TestDeadletterListFilters: ErrorContains, Group, Since and Until select
// the right entries, across pages and scan budgets.
func TestDeadletterListFilters(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	q := dlQueue(t, srv.Client, srv.Key("orders"))
	// Entry i: ID (1000+i)-0; group billing for even i, shipping for odd;
	// reason "timeout ..." when i%3 == 0.
	all := dlFill(t, srv.Client, q, 1000, 300, func(i int) (string, string) {
		group := []string{"billing", "shipping"}[i%2]
		if i%3 == 0 {
			return group, "call to payments: timeout after 5s"
		}
		return group, "amount: invalid syntax"
	})
	want := func(keep func(i int) bool) []string {
		var ids []string
		for i, id := range all {
			if keep(i) {
				ids = append(ids, id)
			}
		}
		return ids
	}
	ms := time.UnixMilli
	for _, tc := range []struct {
		name string
		opts deadletter.ListOptions
		want []string
	}{
		{"error", deadletter.ListOptions{ErrorContains: "timeout"}, want(func(i int) bool { return i%3 == 0 })},
		{"group", deadletter.ListOptions{Group: "shipping"}, want(func(i int) bool { return i%2 == 1 })},
		{"error and group", deadletter.ListOptions{ErrorContains: "invalid", Group: "billing"},
			want(func(i int) bool { return i%3 != 0 && i%2 == 0 })},
		{"nothing matches", deadletter.ListOptions{ErrorContains: "disk full"}, nil},
		{"unknown group", deadletter.ListOptions{Group: "nobody"}, nil},
		{"since until", deadletter.ListOptions{Since: ms(1100), Until: ms(1200)}, all[100:200]},
		{"since", deadletter.ListOptions{Since: ms(1290)}, all[290:]},
		{"until", deadletter.ListOptions{Until: ms(1010)}, all[:10]},
		{"sub-millisecond bounds", deadletter.ListOptions{Since: ms(1100).Add(time.Microsecond), Until: ms(1110).Add(time.Microsecond)}, all[101:111]},
		{"window before", deadletter.ListOptions{Until: ms(1000)}, nil},
		{"window after", deadletter.ListOptions{Since: ms(1300)}, nil},
		{"empty window", deadletter.ListOptions{Since: ms(1200), Until: ms(1200)}, nil},
		{"reversed window", deadletter.ListOptions{Since: ms(1200), Until: ms(1100)}, nil},
		{"window and cursor", deadletter.ListOptions{Since: ms(1100), Until: ms(1200), After: "1150-0"}, all[151:200]},
		{"cursor before window", deadletter.ListOptions{Since: ms(1100), Until: ms(1200), After: "1050-0"}, all[100:200]},
		{"all filters", deadletter.ListOptions{Since: ms(1100), Until: ms(1200), ErrorContains: "timeout", Group: "billing"},
			want(func(i int) bool { return i >= 100 && i < 200 && i%6 == 0 })},
		{"small limit", deadletter.ListOptions{ErrorContains: "timeout", Limit: 3}, want(func(i int) bool { return i%3 == 0 })},
		{"small budget", deadletter.ListOptions{ErrorContains: "timeout", ScanBudget: 10}, want(func(i int) bool { return i%3 == 0 })},
		{"budget 1", deadletter.ListOptions{Group: "shipping", ScanBudget: 1, Limit: 5}, want(func(i int) bool { return i%2 == 1 })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids, _ := dlListAll(t, q, tc.opts)
			if !slices.Equal(ids, tc.want) {
				t.Fatalf("got %d entries %v\nwant %d %v", len(ids), ids, len(tc.want), tc.want)
			}
		})
	}

	// A spent budget returns what it found and the last examined ID.
	entries, next, err := q.List(ctx, deadletter.ListOptions{ErrorContains: "timeout", ScanBudget: 10})
	if err != nil || len(entries) != 4 || next != "1009-0" {
		t.Fatalf("budget 10: %d entries, next %q, %v; want 4, 1009-0", len(entries), next, err)
	}
	entries, next, err = q.List(ctx, deadletter.ListOptions{ErrorContains: "disk full", ScanBudget: 100})
	if err != nil || len(entries) != 0 || next != "1099-0" {
		t.Fatalf("no match, budget 100: %d entries, next %q, %v; want 0, 1099-0", len(entries), next, err)
	}
	// The default budget is 10 × Limit.
	entries, next, err = q.List(ctx, deadletter.ListOptions{ErrorContains: "disk full", Limit: 2})
	if err != nil || len(entries) != 0 || next != "1019-0" {
		t.Fatalf("no match, limit 2: %d entries, next %q, %v; want 0, 1019-0", len(entries), next, err)
	}
	// A budget spent exactly at the end reports nothing more.
	entries, next, err = q.List(ctx, deadletter.ListOptions{ErrorContains: "disk full", After: "1289-0", ScanBudget: 10})
	if err != nil || len(entries) != 0 || next != "" {
		t.Fatalf("budget spent at the end: %d entries, next %q, %v; want 0, \"\"", len(entries), next, err)
	}
	// The entries carry their provenance.
	entries, _, err = q.List(ctx, deadletter.ListOptions{Limit: 1, After: "1004-0"})
	if err != nil || len(entries) != 1 {
		t.Fatalf("List: %v, %v", entries, err)
	}
	e := entries[0]
	if e.ID != "1005-0" || e.Group != "shipping" || e.Error != "amount: invalid syntax" || e.OriginalID != "6-0" ||
		e.Deliveries != 3 || e.Consumer != "c" || e.Source != q.Source() || !e.Time.Equal(ms(1005)) ||
		!maps.Equal(e.Fields, map[string]string{"n": "5"}) {
		t.Fatalf("entry %+v", e)
	}
}

// dlMoveN makes n entries of src pending for g/c and dead-letters them with
// q. It returns the original fields by original ID.
func dlMoveN(t *testing.T, rdb redis.UniversalClient, q *deadletter.Queue, n int, reason func(i int) string) map[string]map[string]string {
	t.Helper()
	entries := make([]map[string]string, n)
	for i := range entries {
		entries[i] = map[string]string{"n": strconv.Itoa(i), "traceparent": "00-" + strconv.Itoa(i), "header:h": "v"}
	}
	msgs := dlPending(t, rdb, q.Source(), "g", "c", entries...)
	out := make(map[string]map[string]string, n)
	for i, m := range msgs {
		fields := stringFields(m.Values)
		moved, err := q.Move(context.Background(), deadletter.MoveRequest{ID: m.ID, Fields: fields, Group: "g", Consumer: "c", Deliveries: 3, Reason: reason(i)})
		if err != nil || !moved {
			t.Fatalf("Move: %v, %v", moved, err)
		}
		out[m.ID] = fields
	}
	return out
}

// TestDeadletterRedriveAll: every entry goes back to its group's redrive
// stream with its original fields, provenance stripped; the DLQ ends empty;
// the group reads the entries again as new ones there.
func TestDeadletterRedriveAll(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	q := dlQueue(t, srv.Client, srv.Key("orders"))
	const n = 40
	originals := dlMoveN(t, srv.Client, q, n, func(i int) string { return "reason " + strconv.Itoa(i) })
	dl, _, err := q.List(ctx, deadletter.ListOptions{})
	if err != nil || len(dl) != n {
		t.Fatalf("List: %d, %v", len(dl), err)
	}
	res, err := q.Redrive(ctx, deadletter.RedriveOptions{})
	if err != nil || res.Redriven != n || res.Skipped != 0 || res.Empty != 0 || len(res.NewIDs) != n {
		t.Fatalf("Redrive = %+v, %v", res, err)
	}
	if c, err := q.Count(ctx); err != nil || c != 0 {
		t.Fatalf("Count after redrive = %d, %v", c, err)
	}
	side := deadletter.RedriveKey(q.Source(), "g")
	if l := xlen(t, srv.Client, q.Source()); l != n {
		t.Fatalf("source length %d, want %d (nothing added)", l, n)
	}
	if l := xlen(t, srv.Client, side); l != n {
		t.Fatalf("redrive stream length %d, want %d", l, n)
	}
	for _, e := range dl {
		newID, ok := res.NewIDs[e.ID]
		if !ok {
			t.Fatalf("NewIDs lacks %s", e.ID)
		}
		back := srv.Client.XRange(ctx, side, newID, newID).Val()
		if len(back) != 1 || !maps.Equal(stringFields(back[0].Values), originals[e.OriginalID]) {
			t.Fatalf("redriven %s → %s: %v, want %v", e.ID, newID, back, originals[e.OriginalID])
		}
	}
	// The group reads the redriven entries as new ones.
	if err := srv.Client.XGroupCreate(ctx, side, "g", "0").Err(); err != nil {
		t.Fatal(err)
	}
	read, err := srv.Client.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{side, ">"}, Count: 1000}).Result()
	if err != nil || len(read) != 1 || len(read[0].Messages) != n {
		t.Fatalf("XREADGROUP after redrive: %v, %v", read, err)
	}
	// Nothing left: a second Redrive does nothing.
	res, err = q.Redrive(ctx, deadletter.RedriveOptions{})
	if err != nil || res.Redriven != 0 || res.Skipped != 0 {
		t.Fatalf("second Redrive = %+v, %v", res, err)
	}
}

// TestDeadletterRedriveNoDuplicates: redriving the same IDs again, and two
// concurrent Redrive calls over one DLQ, add each entry to the source once.
func TestDeadletterRedriveNoDuplicates(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()

	t.Run("same IDs again", func(t *testing.T) {
		q := dlQueue(t, srv.Client, srv.Key("again"))
		ids := dlFill(t, srv.Client, q, 1000, 10, dlSameProv("g", "x"))
		res, err := q.Redrive(ctx, deadletter.RedriveOptions{IDs: ids[:6]})
		if err != nil || res.Redriven != 6 || res.Skipped != 0 {
			t.Fatalf("Redrive = %+v, %v", res, err)
		}
		// Repeated IDs inside one call, and in a second call.
		res, err = q.Redrive(ctx, deadletter.RedriveOptions{IDs: append(ids[:8:8], ids[7])})
		if err != nil || res.Redriven != 2 || res.Skipped != 7 {
			t.Fatalf("second Redrive = %+v, %v; want 2 redriven, 7 skipped", res, err)
		}
		if l := xlen(t, srv.Client, deadletter.RedriveKey(q.Source(), "g")); l != 8 {
			t.Fatalf("redrive stream length %d, want 8", l)
		}
		if c, _ := q.Count(ctx); c != 2 {
			t.Fatalf("DLQ length %d, want 2", c)
		}
	})

	for _, byID := range []bool{false, true} {
		t.Run(fmt.Sprintf("concurrent byID=%v", byID), func(t *testing.T) {
			q := dlQueue(t, srv.Client, srv.Key(fmt.Sprintf("concurrent%v", byID)))
			const n = 500
			ids := dlFill(t, srv.Client, q, 1000, n, dlSameProv("g", "x"))
			var wg sync.WaitGroup
			results := make([]deadletter.RedriveResult, 2)
			errs := make([]error, 2)
			start := make(chan struct{})
			for w := range 2 {
				// A connected client each, and a common start, so the two
				// really interleave; by ID, the second goes newest first.
				rdb := srv.NewClient()
				if err := rdb.Ping(ctx).Err(); err != nil {
					t.Fatal(err)
				}
				var opts deadletter.RedriveOptions
				if byID {
					opts.IDs = slices.Clone(ids)
					if w == 1 {
						slices.Reverse(opts.IDs)
					}
				}
				wq := dlQueue(t, rdb, q.Source())
				wg.Go(func() {
					<-start
					results[w], errs[w] = wq.Redrive(ctx, opts)
				})
			}
			close(start)
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			if got := results[0].Redriven + results[1].Redriven; got != n {
				t.Fatalf("redriven %d + %d, want %d in all", results[0].Redriven, results[1].Redriven, n)
			}
			t.Logf("redriven %d + %d, skipped %d + %d", results[0].Redriven, results[1].Redriven, results[0].Skipped, results[1].Skipped)
			msgs := srv.Client.XRange(ctx, deadletter.RedriveKey(q.Source(), "g"), "-", "+").Val()
			seen := make(map[string]bool, n)
			for _, m := range msgs {
				v := m.Values["n"].(string)
				if seen[v] {
					t.Fatalf("entry n=%s redriven twice", v)
				}
				seen[v] = true
			}
			if len(msgs) != n {
				t.Fatalf("redrive stream length %d, want %d", len(msgs), n)
			}
			if c, _ := q.Count(ctx); c != 0 {
				t.Fatalf("DLQ length %d, want 0", c)
			}
		})
	}
}

// TestDeadletterRedriveRate: Rate spaces entries, and ctx ends a paced
// Redrive between entries.
func TestDeadletterRedriveRate(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	q := dlQueue(t, srv.Client, srv.Key("orders"))
	const n, rate = 6, 25.0
	dlFill(t, srv.Client, q, 1000, n, dlSameProv("g", "x"))
	start := time.Now()
	res, err := q.Redrive(ctx, deadletter.RedriveOptions{Rate: rate})
	elapsed := time.Since(start)
	if err != nil || res.Redriven != n {
		t.Fatalf("Redrive = %+v, %v", res, err)
	}
	if min := time.Duration(float64(n-1) / rate * float64(time.Second)); elapsed < min {
		t.Fatalf("%d entries at %v/s took %v, want at least %v", n, rate, elapsed, min)
	}

	dlFill(t, srv.Client, q, 2000, 5, dlSameProv("g", "x"))
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	res, err = q.Redrive(cctx, deadletter.RedriveOptions{Rate: 2}) // one every 500ms
	if !errors.Is(err, context.DeadlineExceeded) || res.Redriven < 1 || res.Redriven >= 5 {
		t.Fatalf("Redrive with a deadline = %+v, %v; want some redriven and DeadlineExceeded", res, err)
	}
	if c, _ := q.Count(ctx); c+int64(res.Redriven) != 5 {
		t.Fatalf("DLQ length %d after %d redriven, want %d", c, res.Redriven, 5-res.Redriven)
	}
}

// TestDeadletterRedriveSelect: filters, Max, Target and entries without
// original fields.
func TestDeadletterRedriveSelect(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	q := dlQueue(t, srv.Client, srv.Key("orders"))
	dlFill(t, srv.Client, q, 1000, 30, func(i int) (string, string) {
		return []string{"billing", "shipping"}[i%2], []string{"timeout", "bad input"}[i/15]
	})
	res, err := q.Redrive(ctx, deadletter.RedriveOptions{Group: "shipping", ErrorContains: "timeout"})
	if err != nil || res.Redriven != 7 || res.Skipped != 0 {
		t.Fatalf("Redrive shipping/timeout = %+v, %v; want 7", res, err)
	}
	for dlqID := range res.NewIDs {
		if id, _ := midstream.ParseID(dlqID); id.Ms >= 1015 || id.Ms%2 != 1 {
			t.Fatalf("redriven %s, not a shipping timeout", dlqID)
		}
	}
	res, err = q.Redrive(ctx, deadletter.RedriveOptions{Since: time.UnixMilli(1020), Until: time.UnixMilli(1025)})
	if err != nil || res.Redriven != 5 {
		t.Fatalf("Redrive window = %+v, %v; want 5", res, err)
	}
	res, err = q.Redrive(ctx, deadletter.RedriveOptions{Max: 4})
	if err != nil || res.Redriven != 4 {
		t.Fatalf("Redrive Max 4 = %+v, %v", res, err)
	}
	if c, _ := q.Count(ctx); c != 30-7-5-4 {
		t.Fatalf("DLQ length %d, want %d", c, 30-7-5-4)
	}
	if l := xlen(t, srv.Client, deadletter.RedriveKey(q.Source(), "billing")) + xlen(t, srv.Client, deadletter.RedriveKey(q.Source(), "shipping")); l != 16 {
		t.Fatalf("redrive streams hold %d, want 16", l)
	}

	// Another target, in the DLQ's slot and outside it.
	sameSlot := "{" + q.Source() + "}:retry"
	otherSlot := dlOtherSlotKey(t, srv, q.Key())
	for _, target := range []string{sameSlot, otherSlot} {
		res, err = q.Redrive(ctx, deadletter.RedriveOptions{Target: target, Max: 2})
		if err != nil || res.Redriven != 2 {
			t.Fatalf("Redrive to %s = %+v, %v", target, res, err)
		}
		msgs := srv.Client.XRange(ctx, target, "-", "+").Val()
		if len(msgs) != 2 || len(msgs[0].Values) != 1 || msgs[0].Values["n"] == nil {
			t.Fatalf("%s holds %v", target, msgs)
		}
	}

	// An entry with provenance only stays.
	emptyID, err := srv.Client.XAdd(ctx, &redis.XAddArgs{Stream: q.Key(), Values: []string{deadletter.FieldError, "deleted while pending"}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	before, _ := q.Count(ctx)
	res, err = q.Redrive(ctx, deadletter.RedriveOptions{})
	if err != nil || res.Empty != 1 || res.Redriven != int(before)-1 {
		t.Fatalf("Redrive with an empty entry = %+v, %v", res, err)
	}
	if _, ok, _ := q.Get(ctx, emptyID); !ok {
		t.Fatal("the empty entry was removed")
	}
}

// TestDeadletterDeleteAndPurge: Delete removes the given entries; Purge
// removes the stream and counts its entries.
func TestDeadletterDeleteAndPurge(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	q := dlQueue(t, srv.Client, srv.Key("orders"))
	if n, err := q.Purge(ctx); err != nil || n != 0 {
		t.Fatalf("Purge of a missing DLQ = %d, %v", n, err)
	}
	ids := dlFill(t, srv.Client, q, 1000, 5, dlSameProv("g", "x"))
	if n, err := q.Delete(ctx, ids[1], ids[3], "999-0", ids[1]); err != nil || n != 2 {
		t.Fatalf("Delete = %d, %v; want 2", n, err)
	}
	if n, err := q.Delete(ctx); err != nil || n != 0 {
		t.Fatalf("Delete of nothing = %d, %v", n, err)
	}
	if c, err := q.Count(ctx); err != nil || c != 3 {
		t.Fatalf("Count = %d, %v; want 3", c, err)
	}
	if n, err := q.Purge(ctx); err != nil || n != 3 {
		t.Fatalf("Purge = %d, %v; want 3", n, err)
	}
	if n := srv.Client.Exists(ctx, q.Key()).Val(); n != 0 {
		t.Fatal("the DLQ key still exists after Purge")
	}
	if c, err := q.Count(ctx); err != nil || c != 0 {
		t.Fatalf("Count after Purge = %d, %v", c, err)
	}
	// A key of another type is left alone.
	wrong := dlQueue(t, srv.Client, q.Source(), deadletter.WithKey(srv.Key("string")))
	srv.Client.Set(ctx, wrong.Key(), "x", 0)
	if _, err := wrong.Purge(ctx); !redis.HasErrorPrefix(errors.Unwrap(err), "WRONGTYPE") {
		t.Fatalf("Purge of a string: %v, want WRONGTYPE", err)
	}
	if srv.Client.Get(ctx, wrong.Key()).Val() != "x" {
		t.Fatal("Purge deleted a key that is not a stream")
	}
}
