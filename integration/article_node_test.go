package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/feed"
	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/notify"
)

// EnvRequireNode set to "1" makes the tests that run the article's
// node-redis code fail, rather than skip, when node or the npm packages of
// integration/articlejs are missing (npm ci --prefix integration/articlejs).
const EnvRequireNode = "MIDSTREAM_REQUIRE_NODE"

// articleJS runs the article's code (integration/articlejs/article.mjs).
type articleJS struct {
	t      *testing.T
	url    string
	prefix string
}

func newArticleJS(t *testing.T, srv *redistest.Server) *articleJS {
	t.Helper()
	_, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join("articlejs", "node_modules", "redis", "package.json"))
	}
	if err != nil {
		if os.Getenv(EnvRequireNode) == "1" {
			t.Fatalf("%s=1 but node or integration/articlejs's packages are missing (npm ci --prefix integration/articlejs): %v", EnvRequireNode, err)
		}
		t.Skipf("node or integration/articlejs's packages are missing: %v; set %s=1 to fail instead", err, EnvRequireNode)
	}
	return &articleJS{t: t, url: "redis://" + srv.Addr(), prefix: srv.Key("")}
}

func (a *articleJS) cmd(ctx context.Context, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, "node", append([]string{filepath.Join("articlejs", "article.mjs"), a.url}, args...)...)
	c.Env = append(os.Environ(), "PREFIX="+a.prefix)
	c.Stderr = os.Stderr
	return c
}

// run runs one command and decodes its JSON output into out.
func (a *articleJS) run(out any, args ...string) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := a.cmd(ctx, args...).Output()
	if err != nil {
		a.t.Fatalf("node article.mjs %v: %v", args, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		a.t.Fatalf("node article.mjs %v printed %q: %v", args, b, err)
	}
}

func (a *articleJS) unread(user string) []string {
	var entries []map[string]string
	a.run(&entries, "unread", user)
	ids := []string{}
	for _, e := range entries {
		ids = append(ids, e["id"])
	}
	return ids
}

// TestArticleNodeNotifications: the article's node-redis functions and
// midstream agree on one user's notifications, whoever writes.
func TestArticleNodeNotifications(t *testing.T) {
	srv := redistest.Start(t)
	js := newArticleJS(t, srv)
	ctx := context.Background()
	n, err := notify.New(srv.Client, notify.WithKeyPrefix(srv.Key("notifications:")))
	if err != nil {
		t.Fatal(err)
	}
	const user = "42"
	var ids []string
	for i := range 10 {
		ids = append(ids, mustSendContent(t, n, user, "n"+strconv.Itoa(i)))
	}
	agree := func(step string) {
		t.Helper()
		ours := unreadIDs(t, n, user)
		if ours == nil {
			ours = []string{}
		}
		if theirs := js.unread(user); !slices.Equal(ours, theirs) {
			t.Fatalf("%s: midstream's unread %v, the article's %v", step, ours, theirs)
		}
	}
	agree("10 sent by midstream")
	var ok string
	js.run(&ok, "mark", user, ids[3])
	if err := n.MarkRead(ctx, user, ids[5]); err != nil {
		t.Fatal(err)
	}
	agree("one marked by each")
	var nodeID string
	js.run(&nodeID, "send", user, "from node")
	agree("one sent by the article")
	p, err := n.List(ctx, user, "", 1)
	if err != nil || len(p.Items) != 1 || p.Items[0].ID != nodeID || p.Items[0].Content != "from node" || p.Items[0].Read {
		t.Fatalf("List = %+v, %v; want the article's notification, unread", p, err)
	}
	if err := n.MarkAllRead(ctx, user); err != nil {
		t.Fatal(err)
	}
	agree("MarkAllRead")
	if got := js.unread(user); len(got) != 0 {
		t.Fatalf("the article sees %v unread after MarkAllRead", got)
	}
}

// TestArticleNodeFeed: the article's listener parses what Append publishes,
// the article's feed reader reads midstream's activities, and midstream
// reads the article's.
func TestArticleNodeFeed(t *testing.T) {
	srv := redistest.Start(t)
	js := newArticleJS(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f, err := feed.New(srv.Client, feed.WithStream(srv.Key("activity")), feed.WithChannel(srv.Key("activity:new")))
	if err != nil {
		t.Fatal(err)
	}
	// Users without the test prefix: the article's code adds it to keys.
	if err := f.Follow(ctx, "bob", "userA"); err != nil {
		t.Fatal(err)
	}
	if err := f.Follow(ctx, "bob", "userC"); err != nil {
		t.Fatal(err)
	}
	// The follow sets live under the prefixed names the article reads.
	if err := srv.Client.Rename(ctx, feed.FollowingKey("bob"), srv.Key(feed.FollowingKey("bob"))).Err(); err != nil {
		t.Fatal(err)
	}
	listen := js.cmd(ctx, "listen", "1")
	out, err := listen.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := listen.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("listener: %q, %v", lines.Text(), lines.Err())
	}
	id, err := f.Append(ctx, "userA", map[string]string{"type": "post", "postId": "456", "timestamp": "1700000000000"})
	if err != nil {
		t.Fatal(err)
	}
	if !lines.Scan() {
		t.Fatalf("the listener printed nothing: %v", lines.Err())
	}
	var got map[string]string
	if err := json.Unmarshal(lines.Bytes(), &got); err != nil || got["id"] != id || got["actor"] != "userA" || got["postId"] != "456" {
		t.Fatalf("the article's listener parsed %q (%v), want the activity %s", lines.Text(), err, id)
	}
	if err := listen.Wait(); err != nil {
		t.Fatal(err)
	}
	var nodeID string
	js.run(&nodeID, "post", "userC", "789")
	var theirs []map[string]string
	js.run(&theirs, "feed", "bob")
	if len(theirs) != 2 || theirs[0]["id"] != nodeID || theirs[1]["id"] != id || theirs[1]["postId"] != "456" {
		t.Fatalf("the article's feed for bob: %v", theirs)
	}
	if err := srv.Client.Rename(ctx, srv.Key(feed.FollowingKey("bob")), feed.FollowingKey("bob")).Err(); err != nil {
		t.Fatal(err)
	}
	page, err := f.Read(ctx, "bob", "", 10)
	if err != nil || len(page.Items) != 2 || page.Items[0].ID != nodeID || page.Items[0].Fields["postId"] != "789" || page.Items[1].ID != id {
		t.Fatalf("midstream's feed for bob: %+v, %v", page, err)
	}
}

// TestArticleNodeNumbers: the flat codec writes numbers as JavaScript's
// String(Number(x)) does, and reads what JavaScript writes.
func TestArticleNodeNumbers(t *testing.T) {
	srv := redistest.Start(t)
	js := newArticleJS(t, srv)
	type num struct {
		X float64 `redis:"x"`
	}
	codec, err := midstream.NewFlatCodec[num]()
	if err != nil {
		t.Fatal(err)
	}
	encode := func(x float64) string {
		pairs, err := codec.Encode(nil, num{X: x})
		if err != nil {
			t.Fatal(err)
		}
		return pairs[1]
	}
	tenth := 0.1
	values := []float64{0, math.Copysign(0, -1), 9.99, 1e-7, 1.5e-7, 1e-6, 1e21, 1e20, 123456789012345680000, tenth + 0.2,
		5e-324, math.MaxFloat64, -math.MaxFloat64, math.Inf(1), math.Inf(-1), math.NaN(), 1 << 53, -42.5e-300}
	var theirs []string
	js.run(&theirs, "random-doubles", "2000")
	for _, s := range theirs { // JavaScript's text, decoded and written again
		var v num
		if err := codec.Decode(map[string]string{"x": s}, &v); err != nil {
			t.Fatalf("decoding JavaScript's %q: %v", s, err)
		}
		if got := encode(v.X); got != s {
			t.Fatalf("JavaScript wrote %q, midstream writes %q", s, got)
		}
		values = append(values, v.X)
	}
	var ours []string
	for _, v := range values {
		ours = append(ours, encode(v))
	}
	var back []string
	js.run(&back, append([]string{"numbers"}, ours...)...)
	for i := range ours {
		if back[i] != ours[i] {
			t.Errorf("midstream wrote %q, JavaScript's String(Number(...)) gives %q", ours[i], back[i])
		}
	}
	t.Logf("%d numbers agree (%s ...)", len(ours), strings.Join(ours[:6], " "))
}
