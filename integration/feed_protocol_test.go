package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/feed"
	"github.com/midstream-go/midstream/integration/redistest"
)

// TestFeedAppendPublishesJSON: the article's listener does
// JSON.parse(message) on activity:new; Append's message is the activity as
// a JSON object with its ID.
func TestFeedAppendPublishesJSON(t *testing.T) {
	srv := redistest.Start(t)
	f := newFeed(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ps := srv.Client.Subscribe(ctx, srv.Key("activity:new"))
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil { // the subscription confirmation
		t.Fatal(err)
	}
	id, err := f.Append(ctx, "userA", map[string]string{"type": "post", "postId": "456", "text": `"quoted" / ünïcode`})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := ps.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(msg.Payload), &got); err != nil {
		t.Fatalf("payload %q is not a JSON object of strings: %v", msg.Payload, err)
	}
	want := map[string]string{"id": id, "actor": "userA", "type": "post", "postId": "456", "text": `"quoted" / ünïcode`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("published %v, want %v", got, want)
	}
	if _, err := f.Append(ctx, "userA", map[string]string{"id": "x"}); err == nil {
		t.Fatal("Append accepted a field named id")
	}
}

// TestFeedFanOutWrongTypeAndRetry: a follower whose timeline key holds
// another type is reported, the others get the activity; FanOut again
// copies nothing twice.
func TestFeedFanOutWrongTypeAndRetry(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	f := newFeed(t, srv, feed.WithFanOutOnWrite(1000), feed.WithFanOutBatch(7))
	actor := srv.Key("star")
	var followers []string
	for i := range 250 {
		u := srv.Key("fan" + strconv.Itoa(i))
		followers = append(followers, u)
		if err := f.Follow(ctx, u, actor); err != nil {
			t.Fatal(err)
		}
	}
	bad := followers[123]
	if err := srv.Client.Set(ctx, feed.TimelineKey(bad), "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	id, err := f.Append(ctx, actor, map[string]string{"type": "post"})
	var fe *feed.FanOutError
	if !errors.As(err, &fe) || fe.Count != 1 || fe.Failed[bad] == nil || fe.ID != id {
		t.Fatalf("Append = %s, %v; want a FanOutError naming %s", id, err, bad)
	}
	if !redis.HasErrorPrefix(errors.Unwrap(fe.Failed[bad]), "WRONGTYPE") {
		t.Errorf("failure of %s: %v, want WRONGTYPE", bad, fe.Failed[bad])
	}
	check := func() {
		t.Helper()
		for _, u := range followers {
			if u == bad {
				continue
			}
			msgs, err := srv.Client.XRange(ctx, feed.TimelineKey(u), "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != 1 || msgs[0].ID != id {
				t.Fatalf("%s's timeline: %v, want only %s", u, msgs, id)
			}
		}
	}
	check()
	// A retry (here: after fixing the key) completes the work without
	// duplicating it.
	if err := srv.Client.Del(ctx, feed.TimelineKey(bad)).Err(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := f.FanOut(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	bad = ""
	check()
	if err := f.FanOut(ctx, "1-1"); !errors.Is(err, feed.ErrNoActivity) {
		t.Fatalf("FanOut of a missing ID: %v", err)
	}
}

// TestFeedFanOutConcurrentActors: actors appending at once, with shared
// followers, leave every activity exactly once in every follower's
// timeline; the copies that could not keep their ID say which activity they
// are.
func TestFeedFanOutConcurrentActors(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	f := newFeed(t, srv, feed.WithFanOutOnWrite(100_000), feed.WithFanOutBatch(3))
	const actors, followers, posts = 6, 20, 40
	for a := range actors {
		for u := range followers {
			if err := f.Follow(ctx, srv.Key("f"+strconv.Itoa(u)), srv.Key("a"+strconv.Itoa(a))); err != nil {
				t.Fatal(err)
			}
		}
	}
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	for a := range actors {
		wg.Go(func() {
			for i := range posts {
				id, err := f.Append(ctx, srv.Key("a"+strconv.Itoa(a)), map[string]string{"n": strconv.Itoa(i)})
				if err != nil {
					t.Error(err)
					return
				}
				if i%5 == 0 { // a retried fan-out changes nothing
					if err := f.FanOut(ctx, id); err != nil {
						t.Error(err)
					}
				}
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(ids)
	late := 0
	for u := range followers {
		tl := feed.TimelineKey(srv.Key("f" + strconv.Itoa(u)))
		msgs, err := srv.Client.XRange(ctx, tl, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range msgs {
			if a, ok := m.Values[feed.FieldActivityID].(string); ok {
				got = append(got, a)
				late++
			} else {
				got = append(got, m.ID)
			}
		}
		slices.SortFunc(got, func(a, b string) int { return mustID(t, a).Compare(mustID(t, b)) })
		sorted := slices.Clone(ids)
		slices.SortFunc(sorted, func(a, b string) int { return mustID(t, a).Compare(mustID(t, b)) })
		if !slices.Equal(got, sorted) {
			for _, id := range sorted {
				if !slices.Contains(got, id) {
					t.Logf("missing %s", id)
				}
			}
			t.Fatalf("%s holds %d activities, want the %d appended, once each", tl, len(got), len(sorted))
		}
	}
	t.Logf("%d timelines x %d activities; %d copies took a new ID", followers, len(ids), late)
}

// TestFeedFollowersBackfillAndPages: Followers lists the reverse set; a new
// follow under fan-out on write backfills the newest activities; Pages
// walks a feed page by page.
func TestFeedFollowersBackfillAndPages(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	f := newFeed(t, srv, feed.WithFanOutOnWrite(1000), feed.WithBackfill(5))
	ann, bob, cy := srv.Key("ann"), srv.Key("bob"), srv.Key("cy")
	var annIDs []string
	for i := range 8 {
		id, err := f.Append(ctx, ann, map[string]string{"n": strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		annIDs = append(annIDs, id)
		if _, err := f.Append(ctx, cy, map[string]string{"n": strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Follow(ctx, bob, ann); err != nil {
		t.Fatal(err)
	}
	if err := f.Follow(ctx, bob, ann); err != nil { // a repeat backfills nothing twice
		t.Fatal(err)
	}
	if err := f.Follow(ctx, cy, ann); err != nil {
		t.Fatal(err)
	}
	if got, err := f.Followers(ctx, ann); err != nil || !slices.Equal(got, []string{bob, cy}) {
		t.Fatalf("Followers = %v, %v", got, err)
	}
	var listed []string
	pages := 0
	for p, err := range f.Pages(ctx, bob, "", 2) {
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, e := range p.Items {
			listed = append(listed, e.ID)
		}
	}
	want := slices.Clone(annIDs[3:])
	slices.Reverse(want)
	if !slices.Equal(listed, want) || pages != 3 {
		t.Fatalf("bob's feed after backfill: %v in %d pages, want %v in 3", listed, pages, want)
	}
	// A backfill into a timeline with newer entries takes new IDs and says
	// which activity each copy is.
	if err := f.Follow(ctx, cy, bob); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Append(ctx, bob, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.Unfollow(ctx, cy, ann); err != nil {
		t.Fatal(err)
	}
	if err := f.Follow(ctx, cy, ann); err != nil {
		t.Fatal(err)
	}
	msgs, err := srv.Client.XRange(ctx, feed.TimelineKey(cy), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 6 { // ann's 5, then bob's post; the second backfill found them all there
		t.Fatalf("cy's timeline holds %d entries, want 6: %v", len(msgs), msgs)
	}
}

// TestFeedFanOutManyFollowers: an actor with 20,000 followers; fan-out on
// write holds Redis for one small script per follower, never for the whole
// fan-out. The longest script and the fan-out's time are logged.
func TestFeedFanOutManyFollowers(t *testing.T) {
	srv := redistest.Start(t)
	if srv.Backend == "url" {
		t.Skip("changes the server's slow log settings: not on a shared server")
	}
	ctx := context.Background()
	f := newFeed(t, srv, feed.WithFanOutOnWrite(100))
	actor := srv.Key("celebrity")
	const followers = 20_000
	pipe := srv.Client.Pipeline()
	for i := range followers {
		u := srv.Key("fan" + strconv.Itoa(i))
		pipe.SAdd(ctx, feed.FollowersKey(actor), u)
		pipe.SAdd(ctx, feed.FollowingKey(u), actor)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	startSlowLog(t, srv.Client)
	start := time.Now()
	id, err := f.Append(ctx, actor, map[string]string{"type": "post"})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	for _, i := range []int{0, followers / 2, followers - 1} {
		tl := feed.TimelineKey(srv.Key("fan" + strconv.Itoa(i)))
		if msgs := srv.Client.XRange(ctx, tl, "-", "+").Val(); len(msgs) != 1 || msgs[0].ID != id {
			t.Fatalf("%s: %v", tl, msgs)
		}
	}
	script, anyCmd, calls := slowest(t, srv.Client)
	t.Logf("fan-out to %d followers in %s; %d script calls over 1ms, longest %s (any command %s); %s",
		followers, took, calls, script, anyCmd, evalStats(srv.Client.Info(ctx, "commandstats").Val()))
	if script > time.Second {
		t.Fatalf("a script held Redis for %s", script)
	}
}
