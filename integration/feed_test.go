package integration

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/midstream-go/midstream/feed"
	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/live"
)

func newFeed(t *testing.T, srv *redistest.Server, opts ...feed.Option) *feed.Feed {
	t.Helper()
	f, err := feed.New(srv.Client, append([]feed.Option{feed.WithStream(srv.Key("activity")),
		feed.WithChannel(srv.Key("activity:new"))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// readAll pages through user's feed and returns the IDs, failing on a
// repeat or an order violation.
func readAll(t *testing.T, f *feed.Feed, user string, limit int, between func(page int)) []string {
	t.Helper()
	var ids []string
	seen := map[string]bool{}
	cursor := ""
	for page := 0; ; page++ {
		if page > 100_000 {
			t.Fatal("pagination does not end")
		}
		if between != nil {
			between(page)
		}
		p, err := f.Read(context.Background(), user, cursor, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) > limit {
			t.Fatalf("page of %d items, limit %d", len(p.Items), limit)
		}
		for _, e := range p.Items {
			if seen[e.ID] {
				t.Fatalf("%s on two pages", e.ID)
			}
			seen[e.ID] = true
			if len(ids) > 0 && mustID(t, e.ID).Compare(mustID(t, ids[len(ids)-1])) >= 0 {
				t.Fatalf("%s after %s: not newest first", e.ID, ids[len(ids)-1])
			}
			ids = append(ids, e.ID)
		}
		if p.Next == "" {
			return ids
		}
		cursor = p.Next
	}
}

// TestFeedPaginationStableUnderAppends pages through a feed while other
// goroutines keep appending: every entry that existed when paging started is
// listed once, nothing twice.
func TestFeedPaginationStableUnderAppends(t *testing.T) {
	for _, mode := range []string{"read", "write"} {
		t.Run(mode, func(t *testing.T) {
			srv := redistest.Start(t)
			var opts []feed.Option
			if mode == "write" {
				opts = append(opts, feed.WithFanOutOnWrite(100_000))
			}
			f := newFeed(t, srv, opts...)
			ctx := context.Background()
			bob := srv.Key("bob")
			actors := []string{srv.Key("ann"), srv.Key("cy"), srv.Key("dee")}
			for _, a := range actors[:2] {
				if err := f.Follow(ctx, bob, a); err != nil {
					t.Fatal(err)
				}
			}
			var want []string
			for i := range 600 {
				a := actors[i%3]
				id, err := f.Append(ctx, a, map[string]string{"n": strconv.Itoa(i)})
				if err != nil {
					t.Fatal(err)
				}
				if a != actors[2] {
					want = append(want, id)
				}
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := f.Append(ctx, actors[i%3], map[string]string{"late": "1"}); err != nil {
						t.Error(err)
						return
					}
				}
			})
			got := readAll(t, f, bob, 17, func(int) { time.Sleep(time.Millisecond) })
			close(stop)
			wg.Wait()
			// got holds the late entries at its head, then exactly want, newest first.
			idx := len(got) - len(want)
			if idx < 0 {
				t.Fatalf("listed %d, want at least %d", len(got), len(want))
			}
			for i, id := range want {
				if got[len(got)-1-i] != id {
					t.Fatalf("position %d from the end: %s, want %s", i, got[len(got)-1-i], id)
				}
			}
			t.Logf("listed %d (%d before paging started, %d appended during it)", len(got), len(want), idx)
		})
	}
}

// TestFeedSparseFollowsFillPage: a followed actor with one activity in
// 200 still gets full pages, scanning further than one XREVRANGE; with a
// small scan budget the page comes back short with a cursor that continues.
func TestFeedSparseFollowsFillPage(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	f := newFeed(t, srv)
	bob, ann, noisy := srv.Key("bob"), srv.Key("ann"), srv.Key("noisy")
	if err := f.Follow(ctx, bob, ann); err != nil {
		t.Fatal(err)
	}
	var anns []string
	for i := range 4000 {
		a := noisy
		if i%200 == 0 {
			a = ann
		}
		id, err := f.Append(ctx, a, map[string]string{"n": strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		if a == ann {
			anns = append(anns, id)
		}
	}
	big, err := feed.New(srv.Client, feed.WithStream(srv.Key("activity")), feed.WithScanBudget(10_000))
	if err != nil {
		t.Fatal(err)
	}
	p, err := big.Read(ctx, bob, "", 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 5 || p.Next != p.Items[4].ID {
		t.Fatalf("page of %d, next %q: want a full page of 5", len(p.Items), p.Next)
	}
	for i, e := range p.Items {
		if e.ID != anns[len(anns)-1-i] {
			t.Fatalf("item %d = %s, want %s", i, e.ID, anns[len(anns)-1-i])
		}
	}
	// Default budget (1000): short pages, but paging still finds all 20.
	if got := readAll(t, f, bob, 5, nil); len(got) != len(anns) {
		t.Fatalf("paged %d, want %d", len(got), len(anns))
	}
	short, err := f.Read(ctx, bob, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(short.Items) != 5 || short.Next == "" {
		t.Fatalf("budget 1000: %d items next %q; want 5 and a cursor", len(short.Items), short.Next)
	}
}

// TestFeedFanOutOnWriteMatchesRead: both strategies give the same feed,
// after follows, appends and an unfollow.
func TestFeedFanOutOnWriteMatchesRead(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	w := newFeed(t, srv, feed.WithFanOutOnWrite(10_000))
	r := newFeed(t, srv) // same activity stream and follow sets
	users := []string{srv.Key("u0"), srv.Key("u1"), srv.Key("u2"), srv.Key("u3")}
	for i, u := range users {
		for j, v := range users {
			if i != j && (i+j)%3 != 0 {
				if err := w.Follow(ctx, u, v); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for i := range 400 {
		if _, err := w.Append(ctx, users[i%4], map[string]string{"n": strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Unfollow(ctx, users[0], users[1]); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		a, b := readAll(t, w, u, 23, nil), readAll(t, r, u, 23, nil)
		if len(a) == 0 || len(a) != len(b) {
			t.Fatalf("%s: fan-out on write %d entries, on read %d", u, len(a), len(b))
		}
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%s: entry %d differs: %s vs %s", u, i, a[i], b[i])
			}
		}
	}
	if n := srv.Client.XLen(ctx, feed.TimelineKey(users[0])).Val(); n == 0 {
		t.Fatal("no timeline written")
	}
}

// TestFeedLiveDeliversFollowedActor: in both modes, a live feed delivers a
// followed actor's post and nothing from others.
func TestFeedLiveDeliversFollowedActor(t *testing.T) {
	for _, mode := range []string{"read", "write"} {
		t.Run(mode, func(t *testing.T) {
			srv := redistest.Start(t)
			var opts []feed.Option
			if mode == "write" {
				opts = append(opts, feed.WithFanOutOnWrite(1000))
			}
			f := newFeed(t, srv, opts...)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			bob, ann, cy := srv.Key("bob"), srv.Key("ann"), srv.Key("cy")
			if err := f.Follow(ctx, bob, ann); err != nil {
				t.Fatal(err)
			}
			sub, err := f.Live(ctx, bob, live.Now)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			if _, err := f.Append(ctx, cy, map[string]string{"type": "post"}); err != nil {
				t.Fatal(err)
			}
			id, err := f.Append(ctx, ann, map[string]string{"type": "post"})
			if err != nil {
				t.Fatal(err)
			}
			select {
			case e := <-sub.C():
				if e.ID != id || e.Fields["actor"] != ann {
					t.Fatalf("got %s by %s, want %s by %s", e.ID, e.Fields["actor"], id, ann)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("no live activity within 30s")
			}
		})
	}
}
