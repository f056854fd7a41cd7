package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/live"
	"github.com/midstream-go/midstream/notify"
)

func newNotifier(t *testing.T, srv *redistest.Server, opts ...notify.Option) *notify.Notifier {
	t.Helper()
	n, err := notify.New(srv.Client, append([]notify.Option{notify.WithKeyPrefix(srv.Key("notifications:"))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// allPages lists every page with list and returns the notifications in
// order, failing on a repeated ID or an order violation.
func allPages(t *testing.T, list func(cursor string) (notify.Page, error)) []notify.Notification {
	t.Helper()
	var out []notify.Notification
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10_000 {
			t.Fatal("pagination does not end")
		}
		p, err := list(cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, nt := range p.Items {
			if seen[nt.ID] {
				t.Fatalf("%s listed twice", nt.ID)
			}
			seen[nt.ID] = true
			if len(out) > 0 && mustID(t, nt.ID).Compare(mustID(t, out[len(out)-1].ID)) >= 0 {
				t.Fatalf("%s listed after %s: not newest first", nt.ID, out[len(out)-1].ID)
			}
			out = append(out, nt)
		}
		if p.Next == "" {
			return out
		}
		cursor = p.Next
	}
}

// watermark returns user's read watermark ("0-0" when it never moved).
func watermark(t *testing.T, srv *redistest.Server, n *notify.Notifier, user string) string {
	t.Helper()
	wm, err := srv.Client.HGet(context.Background(), n.StateKey(user), "upto").Result()
	if errors.Is(err, redis.Nil) {
		return "0-0"
	}
	if err != nil {
		t.Fatal(err)
	}
	return wm
}

// readSet returns the IDs in user's read set.
func readSet(t *testing.T, srv *redistest.Server, n *notify.Notifier, user string) []string {
	t.Helper()
	var out []string
	for _, m := range srv.Client.ZRange(context.Background(), n.ReadSetKey(user), 0, -1).Val() {
		ms, seq, _ := strings.Cut(m, "-")
		a, _ := strconv.ParseUint(ms, 10, 64)
		b, _ := strconv.ParseUint(seq, 10, 64)
		out = append(out, fmt.Sprintf("%d-%d", a, b))
	}
	return out
}

func mustID(t *testing.T, s string) midstream.ID {
	t.Helper()
	id, err := midstream.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestNotifyUnreadExactUnderConcurrency sends and marks read concurrently
// (MarkRead, and read markers written the article's way by another client),
// then compares the unread count and lists with a model.
func TestNotifyUnreadExactUnderConcurrency(t *testing.T) {
	srv := redistest.Start(t)
	n := newNotifier(t, srv)
	ctx := context.Background()
	const user, senders, perSender, markers = "u1", 4, 250, 3

	var mu sync.Mutex
	var sent []string
	read := map[string]bool{}
	sendDone := make(chan struct{})
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range perSender {
				id, err := n.Send(ctx, user, "s"+strconv.Itoa(s)+"-"+strconv.Itoa(i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				sent = append(sent, id)
				mu.Unlock()
			}
		})
	}
	var mwg sync.WaitGroup
	for m := range markers {
		mwg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(m), 7))
			for {
				select {
				case <-sendDone:
					return
				default:
				}
				mu.Lock()
				if len(sent) == 0 {
					mu.Unlock()
					continue
				}
				id := sent[r.IntN(len(sent))]
				if r.IntN(3) == 0 { // mark the newest ones often: the watermark moves
					id = sent[len(sent)-1-r.IntN(min(len(sent), 5))]
				}
				mu.Unlock()
				var err error
				if m == 0 { // the article's client
					err = srv.Client.XAdd(ctx, &redis.XAddArgs{Stream: n.Stream(user),
						Values: []string{"markedReadId", id, "readAt", strconv.FormatInt(time.Now().UnixMilli(), 10)}}).Err()
				} else {
					err = n.MarkRead(ctx, user, id)
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				read[id] = true
				mu.Unlock()
				if _, err := n.UnreadCount(ctx, user); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(sendDone)
	mwg.Wait()

	var wantUnread []string
	for _, id := range sent {
		if !read[id] {
			wantUnread = append(wantUnread, id)
		}
	}
	got, err := n.UnreadCount(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sent %d, marked read %d, unread %d (model %d)", len(sent), len(read), got, len(wantUnread))
	if got != int64(len(wantUnread)) {
		t.Fatalf("UnreadCount = %d, model says %d", got, len(wantUnread))
	}
	unread := allPages(t, func(c string) (notify.Page, error) { return n.Unread(ctx, user, c, 37) })
	var unreadIDs []string
	for _, nt := range unread {
		unreadIDs = append(unreadIDs, nt.ID)
	}
	slices.Reverse(unreadIDs)
	slices.SortFunc(wantUnread, func(a, b string) int { return mustID(t, a).Compare(mustID(t, b)) })
	if !slices.Equal(unreadIDs, wantUnread) {
		t.Fatalf("Unread lists %d IDs, model %d", len(unreadIDs), len(wantUnread))
	}
	all := allPages(t, func(c string) (notify.Page, error) { return n.List(ctx, user, c, 50) })
	if len(all) != len(sent) {
		t.Fatalf("List: %d notifications, sent %d", len(all), len(sent))
	}
	for _, nt := range all {
		if nt.Read != read[nt.ID] {
			t.Errorf("%s: Read = %v, model %v", nt.ID, nt.Read, read[nt.ID])
		}
	}
	// The read index stays small: only IDs above the watermark.
	wm := watermark(t, srv, n, user)
	for _, m := range readSet(t, srv, n, user) {
		if mustID(t, m).Compare(mustID(t, wm)) <= 0 {
			t.Errorf("read set holds %s at or below the watermark %s", m, wm)
		}
	}
}

// TestNotifyArticleLayout reads entries another client wrote with plain
// XADD in the article's layout: notifications, read "true" ones, and read
// markers.
func TestNotifyArticleLayout(t *testing.T) {
	srv := redistest.Start(t)
	n := newNotifier(t, srv)
	ctx := context.Background()
	stream := n.Stream("123")
	add := func(vals ...string) string {
		id, err := srv.Client.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: vals}).Result()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	a := add("content", "a", "read", "false", "createdAt", "1700000000000")
	b := add("content", "b", "read", "true", "createdAt", "1700000000001")
	c := add("content", "c", "read", "false", "createdAt", "1700000000002")
	add("markedReadId", a, "readAt", "1700000000003")
	d := add("content", "d", "read", "false", "createdAt", "1700000000004")
	add("markedReadId", d, "readAt", "1700000000005")
	e := add("content", "e", "read", "false", "createdAt", "1700000000006")

	if got, err := n.UnreadCount(ctx, "123"); err != nil || got != 2 {
		t.Fatalf("UnreadCount = %d, %v; want 2 (c and e)", got, err)
	}
	page, err := n.List(ctx, "123", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		id, content string
		read        bool
	}{{e, "e", false}, {d, "d", true}, {c, "c", false}, {b, "b", true}, {a, "a", true}}
	if len(page.Items) != len(want) || page.Next != "" {
		t.Fatalf("List = %+v, want %d notifications and no next page", page, len(want))
	}
	for i, w := range want {
		got := page.Items[i]
		if got.ID != w.id || got.Content != w.content || got.Read != w.read {
			t.Errorf("item %d = %s %q read %v, want %s %q read %v", i, got.ID, got.Content, got.Read, w.id, w.content, w.read)
		}
	}
	if got := page.Items[4].CreatedAt.UnixMilli(); got != 1700000000000 {
		t.Errorf("CreatedAt = %d", got)
	}
	unread, err := n.Unread(ctx, "123", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(unread.Items) != 2 || unread.Items[0].ID != e || unread.Items[1].ID != c {
		t.Fatalf("Unread = %+v, want e, c", unread.Items)
	}
	// Our MarkRead moves the watermark over a, b, c, the marker, d.
	if err := n.MarkRead(ctx, "123", c); err != nil {
		t.Fatal(err)
	}
	if wm := watermark(t, srv, n, "123"); mustID(t, wm).Compare(mustID(t, d)) < 0 {
		t.Errorf("watermark %s, want at least %s", wm, d)
	}
	if got, err := n.UnreadCount(ctx, "123"); err != nil || got != 1 {
		t.Fatalf("UnreadCount = %d, %v; want 1", got, err)
	}
}

// TestNotifyMarkAllRead empties the unread list; later notifications are
// unread again.
func TestNotifyMarkAllRead(t *testing.T) {
	srv := redistest.Start(t)
	n := newNotifier(t, srv)
	ctx := context.Background()
	for i := range 30 {
		if _, err := n.Send(ctx, "u", strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.MarkRead(ctx, "u", mustSend(t, n, "u")); err != nil {
		t.Fatal(err)
	}
	if got, _ := n.UnreadCount(ctx, "u"); got != 30 {
		t.Fatalf("UnreadCount = %d, want 30", got)
	}
	if err := n.MarkAllRead(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	if got, err := n.UnreadCount(ctx, "u"); err != nil || got != 0 {
		t.Fatalf("UnreadCount after MarkAllRead = %d, %v", got, err)
	}
	if p, _ := n.Unread(ctx, "u", "", 10); len(p.Items) != 0 {
		t.Fatalf("Unread after MarkAllRead = %d items", len(p.Items))
	}
	if n := srv.Client.Exists(ctx, n.ReadSetKey("u")).Val(); n != 0 {
		t.Errorf("read set still exists after MarkAllRead")
	}
	last := mustSend(t, n, "u")
	p, err := n.Unread(ctx, "u", "", 10)
	if err != nil || len(p.Items) != 1 || p.Items[0].ID != last {
		t.Fatalf("Unread = %+v, %v; want only %s", p, err, last)
	}
	all, err := n.List(ctx, "u", "", 100)
	if err != nil || len(all.Items) != 32 {
		t.Fatalf("List = %d items, %v; want 32", len(all.Items), err)
	}
}

func mustSend(t *testing.T, n *notify.Notifier, user string) string {
	t.Helper()
	id, err := n.Send(context.Background(), user, "x")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestNotifyPagination lists 95 notifications interleaved with markers in
// pages of 10, while more are sent: each listed once, newest first.
func TestNotifyPagination(t *testing.T) {
	srv := redistest.Start(t)
	n := newNotifier(t, srv)
	ctx := context.Background()
	var ids []string
	for i := range 95 {
		ids = append(ids, mustSend(t, n, "p"))
		if i%3 == 0 {
			srv.Client.XAdd(ctx, &redis.XAddArgs{Stream: n.Stream("p"), Values: []string{"markedReadId", ids[len(ids)-1], "readAt", "1"}})
		}
	}
	pages := 0
	got := allPages(t, func(c string) (notify.Page, error) {
		pages++
		if pages == 3 {
			mustSend(t, n, "p") // newer than the first page: not in this listing
		}
		return n.List(ctx, "p", c, 10)
	})
	if len(got) != 95 {
		t.Fatalf("listed %d, want 95", len(got))
	}
	for i, nt := range got {
		if nt.ID != ids[94-i] {
			t.Fatalf("item %d = %s, want %s", i, nt.ID, ids[94-i])
		}
		if nt.Read != (((94 - i) % 3) == 0) {
			t.Errorf("item %d read = %v", i, nt.Read)
		}
	}
}

// TestNotifyBudgetAndRetention: UnreadCount beyond its budget says so; Send
// trims with WithMaxLen.
func TestNotifyBudgetAndRetention(t *testing.T) {
	srv := redistest.Start(t)
	n := newNotifier(t, srv, notify.WithCountBudget(50), notify.WithMaxLen(100))
	ctx := context.Background()
	for range 1000 {
		mustSend(t, n, "r")
	}
	got, err := n.UnreadCount(ctx, "r")
	if !errors.Is(err, notify.ErrCountBudget) || got != 50 {
		t.Fatalf("UnreadCount = %d, %v; want 50 and ErrCountBudget", got, err)
	}
	if l := srv.Client.XLen(ctx, n.Stream("r")).Val(); l < 100 || l > 300 {
		t.Fatalf("XLEN = %d with MAXLEN ~ 100", l)
	}
}

// TestNotifyLive delivers sent notifications and skips read markers.
func TestNotifyLive(t *testing.T) {
	srv := redistest.Start(t)
	n := newNotifier(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := n.Live(ctx, "l", live.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	a := mustSend(t, n, "l")
	if err := n.MarkRead(ctx, "l", a); err != nil {
		t.Fatal(err)
	}
	srv.Client.XAdd(ctx, &redis.XAddArgs{Stream: n.Stream("l"), Values: []string{"markedReadId", a, "readAt", "1"}})
	b := mustSend(t, n, "l")
	for _, want := range []string{a, b} {
		select {
		case e := <-sub.C():
			if e.ID != want || notify.Decode(e).Content != "x" {
				t.Fatalf("got %s %v, want %s", e.ID, e.Fields, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no notification %s within 30s", want)
		}
	}
}
