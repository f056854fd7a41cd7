package deadletter

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/internal/keys"
)

// TestDeadletterMarkerSlot: a marker lives in its dead-letter stream's slot
// whatever the key and the source, group and ID it names.
func TestDeadletterMarkerSlot(t *testing.T) {
	for _, tc := range []struct{ dlq, prefix string }{
		{"{orders}:dlq", "{orders}:dlq:moved:"},
		{"shop:{orders}:v2:dlq", "shop:{orders}:v2:dlq:moved:"},
		{"elsewhere:dlq", "{elsewhere:dlq}:moved:"},
		{"x{", "{x{}:moved:"},
		{"a}b", ""}, // no tag and a '}': a tag found in its slot
		{"x{}", ""},
		{"{}y", ""},
	} {
		p := markerPrefix(tc.dlq)
		if tc.prefix != "" && p != tc.prefix {
			t.Errorf("markerPrefix(%q) = %q, want %q", tc.dlq, p, tc.prefix)
		}
		q := &Queue{source: "src{1}", key: tc.dlq, markers: p}
		for _, k := range []string{q.markerKey("g", "1-0"), q.markerKey("{g}", "2-5"), q.markerKey("", "0-1")} {
			if !keys.SameSlot(k, tc.dlq) {
				t.Errorf("marker %q is not in the slot of %q", k, tc.dlq)
			}
		}
	}
	a := &Queue{source: "a:b", markers: "p:"}
	b := &Queue{source: "a", markers: "p:"}
	if a.markerKey("c", "1-0") == b.markerKey("b:c", "1-0") {
		t.Fatalf("markers of different entries collide: %s", a.markerKey("c", "1-0"))
	}
}

// TestDeadletterMoveWithoutACLCheck: a server without redis.acl_check_cmd
// (Redis before 7.0; miniredis) takes the marker path even in one slot: the
// entry moves once and its marker expires.
func TestDeadletterMoveWithoutACLCheck(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	q, err := New(rdb, "{orders}")
	if err != nil || !q.Atomic() {
		t.Fatalf("New = %v, %v", q, err)
	}
	id := rdb.XAdd(ctx, &redis.XAddArgs{Stream: "{orders}", Values: []string{"k", "v"}}).Val()
	rdb.XGroupCreate(ctx, "{orders}", "g", "0")
	rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{"{orders}", ">"}})
	req := MoveRequest{ID: id, Fields: map[string]string{"k": "v"}, Group: "g", Consumer: "c"}
	if moved, err := q.Move(ctx, req); err != nil || !moved {
		t.Fatalf("Move = %v, %v", moved, err)
	}
	if moved, err := q.Move(ctx, req); err != nil || moved {
		t.Fatalf("second Move = %v, %v; want not moved", moved, err)
	}
	dl := rdb.XRange(ctx, q.Key(), "-", "+").Val()
	if len(dl) != 1 || dl[0].Values[FieldDeliveries] != "1" {
		t.Fatalf("DLQ holds %v, want one entry with 1 delivery", dl)
	}
	marker := q.markerKey("g", id)
	if got := rdb.Get(ctx, marker).Val(); got != dl[0].ID {
		t.Fatalf("marker %s holds %q, want %s", marker, got, dl[0].ID)
	}
	if ttl := mr.TTL(marker); ttl <= 0 || ttl > MarkerTTL {
		t.Fatalf("marker TTL %v", ttl)
	}
	mr.FastForward(MarkerTTL + time.Second)
	if mr.Exists(marker) {
		t.Fatal("the marker did not expire")
	}
}
