package integration

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/feed"
	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/notify"
)

// TestFeedNotifyLostReplies: a write whose reply is lost after Redis ran
// it, then retried by the caller, leaves one effect: one notification per
// idempotency key, one read marker per MarkRead, one timeline copy per
// activity.
func TestFeedNotifyLostReplies(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	proxy := srv.StartProxy(t)
	viaProxy := redis.NewClient(&redis.Options{Addr: proxy.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = viaProxy.Close() })
	n, err := notify.New(viaProxy, notify.WithKeyPrefix(srv.Key("notifications:")))
	if err != nil {
		t.Fatal(err)
	}
	retry := func(what string, call func() error) {
		t.Helper()
		proxy.LoseNextReply()
		if err := call(); err == nil {
			t.Fatalf("%s: no error although the reply was lost", what)
		}
		if err := call(); err != nil {
			t.Fatalf("%s, again: %v", what, err)
		}
	}
	// Load the scripts first: a lost reply to SCRIPT LOAD or a NOSCRIPT is
	// not what this test is about.
	warm := mustSendContent(t, n, "w", "x")
	if err := n.MarkRead(ctx, "w", warm); err != nil {
		t.Fatal(err)
	}
	var first string
	retry("Send", func() error {
		id, err := n.Send(ctx, "u", "hello", notify.WithIdempotencyKey("k1"))
		if first == "" {
			first = id
		}
		return err
	})
	if l := srv.Client.XLen(ctx, n.Stream("u")).Val(); l != 1 {
		t.Fatalf("a retried Send left %d entries", l)
	}
	id := srv.Client.XRange(ctx, n.Stream("u"), "-", "+").Val()[0].ID
	retry("MarkRead", func() error { return n.MarkRead(ctx, "u", id) })
	if l := srv.Client.XLen(ctx, n.Stream("u")).Val(); l != 2 {
		t.Fatalf("a retried MarkRead left %d entries, want the notification and one marker", l)
	}
	if got := articleUnread(t, srv.Client, n.Stream("u")); len(got) != 0 {
		t.Fatalf("the article sees %v unread", got)
	}

	f, err := feed.New(viaProxy, feed.WithStream(srv.Key("activity")), feed.WithChannel(srv.Key("activity:new")),
		feed.WithFanOutOnWrite(100))
	if err != nil {
		t.Fatal(err)
	}
	fans := []string{srv.Key("f1"), srv.Key("f2")}
	for _, u := range fans {
		if err := f.Follow(ctx, u, srv.Key("a")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.Append(ctx, srv.Key("a"), nil); err != nil { // loads the scripts
		t.Fatal(err)
	}
	// An activity not fanned out yet (written the article's way).
	aid, err := srv.Client.XAdd(ctx, &redis.XAddArgs{Stream: srv.Key("activity"), Values: []string{"actor", srv.Key("a"), "type", "post"}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	// Lose the reply of the copies' pipeline itself.
	viaProxy.AddHook(newDLHook("evalsha", func() error { proxy.LoseNextReply(); return nil }))
	if err := f.FanOut(ctx, aid); err == nil {
		t.Fatal("FanOut: no error although the reply was lost")
	}
	if err := f.FanOut(ctx, aid); err != nil {
		t.Fatalf("FanOut, again: %v", err)
	}
	for _, u := range fans {
		if l := srv.Client.XLen(ctx, feed.TimelineKey(u)).Val(); l != 2 {
			t.Fatalf("%s's timeline holds %d entries after a retried fan-out", u, l)
		}
	}
	// An Append with an idempotency key whose reply is lost, retried: one
	// activity, and its fan-out complete.
	before := srv.Client.XLen(ctx, srv.Key("activity")).Val()
	var firstID string
	retry("Append", func() error {
		id, err := f.Append(ctx, srv.Key("a"), map[string]string{"type": "post"}, feed.WithIdempotencyKey("post-7"))
		if firstID == "" {
			firstID = id
		}
		return err
	})
	if l := srv.Client.XLen(ctx, srv.Key("activity")).Val(); l != before+1 {
		t.Fatalf("a retried Append added %d activities", l-before)
	}
	again, err := f.Append(ctx, srv.Key("a"), map[string]string{"type": "post"}, feed.WithIdempotencyKey("post-7"))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range fans {
		msgs := srv.Client.XRange(ctx, feed.TimelineKey(u), "-", "+").Val()
		if len(msgs) != 3 || msgs[2].ID != again {
			t.Fatalf("%s's timeline after a retried Append: %v, want the activity %s once", u, msgs, again)
		}
	}
}
