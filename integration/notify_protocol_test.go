package integration

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/internal/redisserver"
	"github.com/midstream-go/midstream/notify"
)

// articleUnread is the article's getUnreadNotifications, line for line:
// the 100 newest entries, minus markers and the IDs they mark. It returns
// the IDs, newest first.
func articleUnread(t *testing.T, rdb redis.Cmdable, stream string) []string {
	t.Helper()
	entries, err := rdb.XRevRangeN(context.Background(), stream, "+", "-", 100).Result()
	if err != nil {
		t.Fatal(err)
	}
	readIDs := map[string]bool{}
	for _, e := range entries {
		if id, ok := e.Values["markedReadId"].(string); ok && id != "" {
			readIDs[id] = true
		}
	}
	var out []string
	for _, e := range entries {
		if _, marker := e.Values["markedReadId"]; !marker && !readIDs[e.ID] {
			out = append(out, e.ID)
		}
	}
	return out
}

// unreadIDs lists every unread notification of user, newest first.
func unreadIDs(t *testing.T, n *notify.Notifier, user string) []string {
	t.Helper()
	var out []string
	for _, nt := range allPages(t, func(c string) (notify.Page, error) { return n.Unread(context.Background(), user, c, 33) }) {
		out = append(out, nt.ID)
	}
	return out
}

// TestNotifyArticleReaderAgrees: after every midstream operation, the
// article's reader sees what midstream sees (within the 100 newest
// entries the article reads), and markers the article's code writes are
// honoured by midstream.
func TestNotifyArticleReaderAgrees(t *testing.T) {
	srv := redistest.Start(t)
	n := newNotifier(t, srv)
	ctx := context.Background()
	const user = "ag"
	stream := n.Stream(user)
	agree := func(step string) {
		t.Helper()
		ours := unreadIDs(t, n, user)
		theirs := articleUnread(t, srv.Client, stream)
		window, err := srv.Client.XRevRangeN(ctx, stream, "+", "-", 100).Result()
		if err != nil {
			t.Fatal(err)
		}
		oldest := "0-0"
		if len(window) > 0 {
			oldest = window[len(window)-1].ID
		}
		var oursInWindow []string
		for _, id := range ours {
			if mustID(t, id).Compare(mustID(t, oldest)) >= 0 {
				oursInWindow = append(oursInWindow, id)
			}
		}
		if !slices.Equal(oursInWindow, theirs) {
			t.Fatalf("%s: midstream's unread in the article's window %v, the article's %v", step, oursInWindow, theirs)
		}
		count, err := n.UnreadCount(ctx, user)
		if err != nil || count != int64(len(ours)) {
			t.Fatalf("%s: UnreadCount = %d, %v; Unread lists %d", step, count, err, len(ours))
		}
	}
	var ids []string
	for i := range 10 {
		ids = append(ids, mustSendContent(t, n, user, "n"+strconv.Itoa(i)))
	}
	agree("10 sent")
	for _, id := range []string{ids[2], ids[7], ids[7]} {
		if err := n.MarkRead(ctx, user, id); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(articleUnread(t, srv.Client, stream)); got != 8 {
		t.Fatalf("the article sees %d unread after two MarkRead, want 8", got)
	}
	agree("2 marked read")
	// The article's markNotificationRead, from the other side.
	if err := srv.Client.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"markedReadId", ids[4], "readAt", "1"}}).Err(); err != nil {
		t.Fatal(err)
	}
	agree("article marks one")
	if err := n.MarkAllRead(ctx, user); err != nil {
		t.Fatal(err)
	}
	agree("MarkAllRead")
	if got := articleUnread(t, srv.Client, stream); len(got) != 0 {
		t.Fatalf("the article sees %v unread after MarkAllRead", got)
	}
	for i := range 150 { // more unread than the article's window
		ids = append(ids, mustSendContent(t, n, user, "m"+strconv.Itoa(i)))
	}
	agree("150 more sent")
	if err := n.MarkRead(ctx, user, ids[len(ids)-1]); err != nil {
		t.Fatal(err)
	}
	agree("newest marked read")
	if err := n.MarkAllRead(ctx, user); err != nil {
		t.Fatal(err)
	}
	agree("MarkAllRead of 149")
	if err := n.MarkAllRead(ctx, user); err != nil { // nothing left: writes nothing
		t.Fatal(err)
	}
	before := srv.Client.XLen(ctx, stream).Val()
	if err := n.MarkAllRead(ctx, user); err != nil {
		t.Fatal(err)
	}
	if after := srv.Client.XLen(ctx, stream).Val(); after != before {
		t.Fatalf("a repeated MarkAllRead wrote %d entries", after-before)
	}

	// Without markers, only midstream knows.
	quiet := newNotifier(t, srv, notify.WithoutReadMarkers())
	id := mustSendContent(t, quiet, "q", "x")
	if err := quiet.MarkRead(ctx, "q", id); err != nil {
		t.Fatal(err)
	}
	if l := srv.Client.XLen(ctx, quiet.Stream("q")).Val(); l != 1 {
		t.Fatalf("WithoutReadMarkers: stream holds %d entries", l)
	}
	if c, err := quiet.UnreadCount(ctx, "q"); err != nil || c != 0 {
		t.Fatalf("UnreadCount = %d, %v", c, err)
	}
}

func mustSendContent(t *testing.T, n *notify.Notifier, user, content string, opts ...notify.SendOption) string {
	t.Helper()
	id, err := n.Send(context.Background(), user, content, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestNotifyReadPathsReadOnly: List, Unread and UnreadCount run for a user
// whose ACL allows only reads, and on a replica.
func TestNotifyReadPathsReadOnly(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	n := newNotifier(t, srv)
	a := mustSendContent(t, n, "ro", "a")
	mustSendContent(t, n, "ro", "b")
	if err := srv.Client.XAdd(ctx, &redis.XAddArgs{Stream: n.Stream("ro"), Values: []string{"markedReadId", a, "readAt", "1"}}).Err(); err != nil {
		t.Fatal(err)
	}
	mustSendContent(t, n, "ro", "c")
	check := func(name string, rdb redis.UniversalClient) {
		t.Helper()
		r, err := notify.New(rdb, notify.WithKeyPrefix(srv.Key("notifications:")))
		if err != nil {
			t.Fatal(err)
		}
		if c, err := r.UnreadCount(ctx, "ro"); err != nil || c != 2 {
			t.Fatalf("%s: UnreadCount = %d, %v; want 2", name, c, err)
		}
		p, err := r.Unread(ctx, "ro", "", 10)
		if err != nil || len(p.Items) != 2 {
			t.Fatalf("%s: Unread = %+v, %v", name, p, err)
		}
		l, err := r.List(ctx, "ro", "", 10)
		if err != nil || len(l.Items) != 3 || !l.Items[2].Read {
			t.Fatalf("%s: List = %+v, %v", name, l, err)
		}
		if _, err := r.Send(ctx, "ro", "x"); err == nil {
			t.Fatalf("%s: Send succeeded on a read-only connection", name)
		}
	}
	if err := srv.Client.Do(ctx, "ACL", "SETUSER", "reader", "on", ">pw", "~*", "&*", "resetchannels", "+@read", "+@connection", "-@write").Err(); err != nil {
		t.Fatal(err)
	}
	reader := srv.NewClient(func(o *redis.Options) { o.Username, o.Password = "reader", "pw" })
	t.Cleanup(func() { _ = reader.Close() })
	check("read-only ACL user", reader)

	if srv.Backend != "process" {
		t.Logf("no replica check on a %s server", srv.Backend)
		return
	}
	host, port, _ := strings.Cut(srv.Addr(), ":")
	rep, err := redisserver.Start(redisserver.Config{Dir: t.TempDir(), Args: []string{"--replicaof", host, port}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rep.Close() })
	replica := redis.NewClient(&redis.Options{Addr: rep.Addr()})
	t.Cleanup(func() { _ = replica.Close() })
	deadline := time.Now().Add(20 * time.Second)
	for replica.XLen(ctx, n.Stream("ro")).Val() != 4 {
		if time.Now().After(deadline) {
			t.Fatal("the replica did not sync within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	check("replica", replica)
}

// TestNotifySendFieldsAndIdempotency: fields beyond content, a typed value
// through a codec, and a repeated Send with the same key adding nothing.
func TestNotifySendFieldsAndIdempotency(t *testing.T) {
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := newNotifier(t, srv, notify.WithIdempotencyTTL(time.Hour))
	type order struct {
		OrderID string  `redis:"orderId"`
		Total   float64 `redis:"total"`
	}
	codec, err := midstream.NewFlatCodec[order]()
	if err != nil {
		t.Fatal(err)
	}
	ps := srv.Client.Subscribe(ctx, n.Channel("f"))
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	opts := []notify.SendOption{notify.WithFields(map[string]string{"kind": "shipping"}),
		notify.WithValue(codec, order{OrderID: "o-1", Total: 1e-7}), notify.WithIdempotencyKey("ship:o-1")}
	first := mustSendContent(t, n, "f", "Your order shipped", opts...)
	again := mustSendContent(t, n, "f", "Your order shipped", opts...)
	if again != first {
		t.Fatalf("repeat returned %s, first %s", again, first)
	}
	if l := srv.Client.XLen(ctx, n.Stream("f")).Val(); l != 1 {
		t.Fatalf("stream holds %d entries after a repeated Send", l)
	}
	other := mustSendContent(t, n, "f", "Another", notify.WithIdempotencyKey("ship:o-2"))
	if other == first {
		t.Fatal("another key returned the first ID")
	}
	p, err := n.List(ctx, "f", "", 10)
	if err != nil || len(p.Items) != 2 {
		t.Fatalf("List = %+v, %v", p, err)
	}
	got := p.Items[1]
	if got.Fields["kind"] != "shipping" || got.Fields["orderId"] != "o-1" || got.Fields["total"] != "1e-7" || got.Content != "Your order shipped" {
		t.Fatalf("fields %v", got.Fields)
	}
	var o order
	if err := codec.Decode(got.Fields, &o); err != nil || o.Total != 1e-7 {
		t.Fatalf("decoded %+v, %v", o, err)
	}
	// {id, content} is published once per notification.
	for _, want := range []string{first, other} {
		msg, err := ps.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(msg.Payload), &m); err != nil || m["id"] != want || len(m) != 2 {
			t.Fatalf("published %q, want {id: %s, content}", msg.Payload, want)
		}
	}
	for _, bad := range []notify.SendOption{notify.WithFields(map[string]string{"read": "true"}),
		notify.WithFields(map[string]string{"markedReadId": "1-1"}), notify.WithIdempotencyKey(""), nil} {
		if _, err := n.Send(ctx, "f", "x", bad); !errors.Is(err, midstream.ErrInvalidOption) {
			t.Errorf("bad option: %v, want ErrInvalidOption", err)
		}
	}
}

// TestNotifyEarlierLayout: the read state earlier versions kept under the
// stream's prefix is honoured by reads and brought over by the first write,
// which deletes it; then users whose streams bear those key names
// ("u:read") work beside it.
func TestNotifyEarlierLayout(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	n := newNotifier(t, srv)
	const user = "u"
	stream := n.Stream(user)
	var ids []string
	for i := range 6 {
		id, err := srv.Client.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"content", strconv.Itoa(i), "read", "false", "createdAt", "1"}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// The earlier layout: watermark at ids[1], ids[3] in the read set.
	srv.Client.Set(ctx, stream+":read-upto", ids[1], 0)
	srv.Client.SAdd(ctx, stream+":read", ids[3])
	srv.Client.Set(ctx, stream+":read-synced", ids[5], 0)
	want := []string{ids[5], ids[4], ids[2]}
	if got := unreadIDs(t, n, user); !slices.Equal(got, want) {
		t.Fatalf("Unread over the earlier layout = %v, want %v", got, want)
	}
	if err := n.MarkRead(ctx, user, ids[4]); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{stream + ":read-upto", stream + ":read", stream + ":read-synced"} {
		if srv.Client.Exists(ctx, k).Val() != 0 {
			t.Errorf("%s still exists after the first write", k)
		}
	}
	want = []string{ids[5], ids[2]}
	if got := unreadIDs(t, n, user); !slices.Equal(got, want) {
		t.Fatalf("Unread after migration = %v, want %v", got, want)
	}
	// A migration interrupted after the new state was written leaves the old
	// keys (here: put back); Sync brings them over again and deletes them.
	srv.Client.Set(ctx, stream+":read-upto", ids[1], 0)
	srv.Client.SAdd(ctx, stream+":read", ids[3])
	if err := n.Sync(ctx, user); err != nil {
		t.Fatal(err)
	}
	if srv.Client.Exists(ctx, stream+":read-upto").Val()+srv.Client.Exists(ctx, stream+":read").Val() != 0 {
		t.Fatal("Sync left the earlier layout's keys")
	}
	if got := unreadIDs(t, n, user); !slices.Equal(got, want) {
		t.Fatalf("Unread after Sync = %v, want %v", got, want)
	}
	// Users whose streams have the names of the earlier layout's keys of
	// "u" live beside it without a collision.
	for _, clash := range []string{"u:read", "u:read-upto", "u:read-synced"} {
		a := mustSendContent(t, n, clash, "mine")
		mustSendContent(t, n, clash, "mine too")
		if err := n.MarkRead(ctx, clash, a); err != nil {
			t.Fatal(err)
		}
		if c, err := n.UnreadCount(ctx, clash); err != nil || c != 1 {
			t.Fatalf("UnreadCount(%q) = %d, %v", clash, c, err)
		}
	}
	if err := n.MarkRead(ctx, user, ids[5]); err != nil {
		t.Fatal(err)
	}
	if got := unreadIDs(t, n, user); !slices.Equal(got, []string{ids[2]}) {
		t.Fatalf("Unread = %v, want %v", got, ids[2])
	}
	// A scan of the article's prefix meets streams only.
	iter := srv.Client.Scan(ctx, 0, n.Stream("*"), 100).Iterator()
	for iter.Next(ctx) {
		if typ := srv.Client.Type(ctx, iter.Val()).Val(); typ != "stream" {
			t.Errorf("%s under the notifications prefix is a %s", iter.Val(), typ)
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestNotifyLargeReadSet: with the oldest notification unread and
// thousands marked read one by one after it, the read set is larger than
// reads take whole; they read it by range and stay exact.
func TestNotifyLargeReadSet(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	n := newNotifier(t, srv)
	const user, total = "many", 3000
	stream := n.Stream(user)
	pipe := srv.Client.Pipeline()
	cmds := make([]*redis.StringCmd, total)
	for i := range total {
		cmds[i] = pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"content", strconv.Itoa(i), "read", "false", "createdAt", "1"}})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	pipe = srv.Client.Pipeline()
	for i, c := range cmds {
		if i%2 == 1 {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"markedReadId", c.Val(), "readAt", "1"}})
		} else {
			want[c.Val()] = true
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.Sync(ctx, user); err != nil {
		t.Fatal(err)
	}
	if size := srv.Client.ZCard(ctx, n.ReadSetKey(user)).Val(); size < 1000 {
		t.Fatalf("read set of %d members: the test needs more than reads take whole", size)
	}
	if c, err := n.UnreadCount(ctx, user); err != nil || c != total/2 {
		t.Fatalf("UnreadCount = %d, %v; want %d", c, err, total/2)
	}
	got := unreadIDs(t, n, user)
	if len(got) != total/2 {
		t.Fatalf("Unread lists %d, want %d", len(got), total/2)
	}
	for _, id := range got {
		if !want[id] {
			t.Fatalf("%s listed unread", id)
		}
	}
	for _, nt := range allPages(t, func(c string) (notify.Page, error) { return n.List(ctx, user, c, 250) }) {
		if nt.Read == want[nt.ID] {
			t.Fatalf("%s: Read = %v", nt.ID, nt.Read)
		}
	}
}
