package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/examples/internal/exampleredis"
	"github.com/midstream-go/midstream/feed"
)

const chromiumPath = "/usr/bin/chromium" // Debian's package "chromium"

// TestBrowser drives the app with a headless Chromium: bob follows alice,
// alice posts from her own tab, and bob's open page shows the post and a
// notification badge without a reload; "Mark read" resets the badge. It
// uses an embedded miniredis, or the server at REDIS_URL.
func TestBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("MIDSTREAM_REQUIRE_BROWSER") == "1" {
			t.Fatalf("MIDSTREAM_REQUIRE_BROWSER=1 but %s is missing (apt-get install chromium): %v", chromiumPath, err)
		}
		t.Skipf("%s is missing (apt-get install chromium); set MIDSTREAM_REQUIRE_BROWSER=1 to fail instead", chromiumPath)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // hang guard
	defer cancel()

	rdb, where, closeRedis, err := exampleredis.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeRedis)
	t.Log("using", where)
	a, err := newApp(rdb)
	if err != nil {
		t.Fatal(err)
	}
	// Unique names, so that runs on a shared real server do not meet.
	suffix := fmt.Sprint(time.Now().UnixNano())
	alice, bob := "alice-"+suffix, "bob-"+suffix
	deleteUsers(t, a, alice, bob)

	// httptest listens on 127.0.0.1. Event streams end with srvCtx, so that
	// Close never waits for them even if a tab is left open.
	srvCtx, stopStreams := context.WithCancel(ctx)
	srv := httptest.NewUnstartedServer(a)
	srv.Config.BaseContext = func(net.Listener) context.Context { return srvCtx }
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(stopStreams) // runs before srv.Close

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// No internet here: talk to 127.0.0.1 only, directly.
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.UserDataDir(t.TempDir()),
	)...)
	defer cancelAlloc()
	var logMu sync.Mutex
	var browserLog bytes.Buffer
	logf := func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintf(&browserLog, format+"\n", args...)
	}
	defer func() {
		if t.Failed() {
			logMu.Lock()
			t.Logf("browser log:\n%s", browserLog.String())
			logMu.Unlock()
		}
	}()

	start := time.Now()
	step := func(name string) {
		t.Logf("%-40s %6.0f ms", name, float64(time.Since(start).Microseconds())/1000)
	}

	// Bob's tab; the first context starts the browser.
	bobCtx, closeBob := chromedp.NewContext(allocCtx, chromedp.WithErrorf(logf))
	defer closeBob()
	page := func(user string) string { return srv.URL + "/?user=" + url.QueryEscape(user) }
	ready := `document.body.dataset.ready === "1"`
	badgeIs := func(n string) string { return `document.getElementById("badge").textContent === "` + n + `"` }
	poll := func(expr string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(20*time.Second))
	}

	if err := chromedp.Do(bobCtx,
		chromedp.Navigate(page(bob)),
		poll(ready),
	); err != nil {
		t.Fatalf("open bob's page: %v", err)
	}
	step("browser started, bob's page ready")

	// Bob follows alice through the page; following reconnects the stream.
	if err := chromedp.Do(bobCtx,
		chromedp.SendKeys(chromedp.ID("target"), alice),
		chromedp.Click(chromedp.ID("follow")),
		chromedp.WaitVisible(chromedp.CSS(`#following li[data-user="`+alice+`"]`)),
		poll(ready),
		poll(badgeIs("0")),
		// A mark that a reload would erase (Poll returns at once: 42 is truthy).
		chromedp.Poll[chromedp.Void](`(window.noReload = 42)`),
	); err != nil {
		t.Fatalf("bob follows alice: %v", err)
	}
	step("bob follows alice, badge 0")
	if got, err := a.feed.Following(ctx, bob); err != nil || len(got) != 1 || got[0] != alice {
		t.Fatalf("bob follows %v (%v), want [%s]", got, err, alice)
	}

	// Alice posts from her own tab, in the same browser.
	aliceCtx, closeAlice := chromedp.NewContext(bobCtx)
	defer closeAlice()
	if err := chromedp.Do(aliceCtx,
		chromedp.Navigate(page(alice)),
		poll(ready),
		chromedp.SendKeys(chromedp.ID("text"), "hello from alice"),
		chromedp.Click(chromedp.ID("post")),
		poll(`document.getElementById("text").value === ""`), // the post was accepted
	); err != nil {
		t.Fatalf("alice posts: %v", err)
	}
	step("alice posted")

	// Bob's page shows the post and the badge, live.
	if err := chromedp.Do(bobCtx,
		poll(`[...document.querySelectorAll("#feed li")].some(li =>
			li.querySelector(".author")?.textContent === "`+alice+`" &&
			li.querySelector(".text")?.textContent === "hello from alice")`),
		step2(step, "post live in bob's feed"),
		poll(badgeIs("1")),
		step2(step, "bob's badge 1"),
	); err != nil {
		t.Fatalf("bob's page: %v", err)
	}
	noReload, err := chromedp.Run(bobCtx, chromedp.Evaluate[int](`window.noReload`))
	if err != nil {
		t.Fatal(err)
	}
	if noReload != 42 {
		t.Fatalf("bob's page was reloaded")
	}
	n, err := a.notify.UnreadCount(ctx, bob)
	if err != nil || n != 1 {
		t.Fatalf("bob's unread count %d (%v), want 1", n, err)
	}

	// Mark read resets the badge.
	if err := chromedp.Do(bobCtx,
		chromedp.Click(chromedp.ID("markread")),
		poll(badgeIs("0")),
	); err != nil {
		t.Fatalf("mark read: %v", err)
	}
	step("mark read, badge 0")
	if n, err := a.notify.UnreadCount(ctx, bob); err != nil || n != 0 {
		t.Fatalf("bob's unread count %d (%v), want 0", n, err)
	}

	// Closing the tabs ends their event streams on the server.
	closeAlice()
	closeBob()
	for a.streams.Load() != 0 {
		if ctx.Err() != nil {
			t.Fatalf("%d event streams still open after the tabs closed", a.streams.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	step("tabs closed, event streams ended")
}

// deleteUsers deletes the users' keys when the test ends, for runs on a
// real server (REDIS_URL). Their posts stay in the shared activity stream.
func deleteUsers(t *testing.T, a *app, users ...string) {
	t.Cleanup(func() {
		for _, u := range users {
			// One key per command: on a cluster they live in different slots.
			for _, k := range []string{feed.FollowingKey(u), feed.FollowersKey(u), a.notify.Stream(u), a.notify.StateKey(u), a.notify.ReadSetKey(u)} {
				if err := a.rdb.Del(context.Background(), k).Err(); err != nil {
					t.Errorf("delete test key %s: %v", k, err)
				}
			}
		}
	})
}

// articleReader returns a function that runs one of the article's
// node-redis functions (integration/articlejs/article.mjs) against rdb's
// server and decodes its JSON output, or nil (the test is skipped, or fails
// with MIDSTREAM_REQUIRE_NODE=1) when node or its packages are missing.
func articleReader(t *testing.T, rdb *redis.Client) func(out any, args ...string) {
	script := filepath.Join("..", "..", "integration", "articlejs", "article.mjs")
	_, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(filepath.Dir(script), "node_modules", "redis", "package.json"))
	}
	if err != nil {
		if os.Getenv("MIDSTREAM_REQUIRE_NODE") == "1" {
			t.Fatalf("MIDSTREAM_REQUIRE_NODE=1 but node or integration/articlejs's packages are missing: %v", err)
		}
		t.Logf("not checking with the article's node-redis code: %v", err)
		return nil
	}
	o := rdb.Options()
	u := url.URL{Scheme: "redis", Host: o.Addr}
	if o.Password != "" {
		u.User = url.UserPassword(o.Username, o.Password)
	}
	return func(out any, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "node", append([]string{script, u.String()}, args...)...)
		cmd.Stderr = os.Stderr
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("node article.mjs %v: %v", args, err)
		}
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("node article.mjs %v printed %q: %v", args, b, err)
		}
	}
}

// step2 logs a step from inside a chromedp.Do.
func step2(step func(string), name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(context.Context, *chromedp.Target) error { step(name); return nil })
}

// TestAPI checks the HTTP API without a browser: validation, follow, post
// with a notification, and the event stream's snapshot.
func TestAPI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rdb, _, closeRedis, err := exampleredis.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeRedis)
	a, err := newApp(rdb)
	if err != nil {
		t.Fatal(err)
	}
	srvCtx, stopStreams := context.WithCancel(ctx)
	srv := httptest.NewUnstartedServer(a)
	srv.Config.BaseContext = func(net.Listener) context.Context { return srvCtx }
	srv.Start()
	defer srv.Close()
	defer stopStreams()

	suffix := fmt.Sprint(time.Now().UnixNano())
	alice, bob := "alice-"+suffix, "bob-"+suffix
	deleteUsers(t, a, alice, bob)
	post := func(path string, form url.Values) (int, string) {
		t.Helper()
		res, err := http.PostForm(srv.URL+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		return res.StatusCode, b.String()
	}
	for _, c := range []struct {
		path string
		form url.Values
	}{
		{"/api/post", url.Values{"user": {"bad name"}, "text": {"x"}}},
		{"/api/post", url.Values{"user": {alice}, "text": {"  "}}},
		{"/api/follow", url.Values{"user": {bob}, "target": {bob}}},
		{"/api/read", url.Values{"user": {bob}, "id": {"not-an-id"}}},
	} {
		if code, body := post(c.path, c.form); code != http.StatusBadRequest {
			t.Errorf("%s %v: %d %s, want 400", c.path, c.form, code, body)
		}
	}
	if code, body := post("/api/follow", url.Values{"user": {bob}, "target": {alice}}); code != 200 || !strings.Contains(body, alice) {
		t.Fatalf("follow: %d %s", code, body)
	}
	if code, body := post("/api/post", url.Values{"user": {alice}, "text": {"hi"}}); code != 200 || !strings.Contains(body, `"notified":1`) {
		t.Fatalf("post: %d %s", code, body)
	}

	// The article's own node-redis functions read what the page wrote.
	if js := articleReader(t, rdb); js != nil {
		var unread, feedItems []map[string]string
		js(&unread, "unread", bob)
		js(&feedItems, "feed", bob)
		if len(unread) != 1 || !strings.Contains(unread[0]["content"], "hi") {
			t.Fatalf("the article's getUnreadNotifications(bob) = %v", unread)
		}
		if len(feedItems) != 1 || feedItems[0]["actor"] != alice || feedItems[0]["text"] != "hi" {
			t.Fatalf("the article's getActivityFeed(bob) = %v", feedItems)
		}
		if code, body := post("/api/read", url.Values{"user": {bob}}); code != 200 {
			t.Fatalf("read: %d %s", code, body)
		}
		js(&unread, "unread", bob)
		if len(unread) != 0 {
			t.Fatalf("the article's getUnreadNotifications(bob) after Mark read = %v", unread)
		}
		if code, body := post("/api/post", url.Values{"user": {alice}, "text": {"hi"}}); code != 200 {
			t.Fatalf("post: %d %s", code, body)
		}
	}

	// The event stream starts with a snapshot holding the post and the count.
	rctx, stop := context.WithCancel(ctx)
	req, _ := http.NewRequestWithContext(rctx, "GET", srv.URL+"/events?user="+bob, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	buf := make([]byte, 4096)
	var got string
	for !strings.Contains(got, "\n\n") {
		n, err := res.Body.Read(buf)
		got += string(buf[:n])
		if err != nil {
			t.Fatalf("read event stream: %v (got %q)", err, got)
		}
	}
	if !strings.HasPrefix(got, "event: snapshot\n") || !strings.Contains(got, `"text":"hi"`) || !strings.Contains(got, `"unread":1`) {
		t.Fatalf("first event: %q", got)
	}
	stop()
	res.Body.Close()
	for a.streams.Load() != 0 { // the handler ends with the client
		if ctx.Err() != nil {
			t.Fatal("event stream still open after the client left")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRun starts and stops the program itself on a free loopback port.
func TestRun(t *testing.T) {
	t.Setenv("REDIS_URL", "")
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", out) }()
	deadline := time.After(10 * time.Second)
	for !strings.Contains(out.String(), "listening on") {
		select {
		case err := <-done:
			t.Fatalf("run ended: %v\n%s", err, out.String())
		case <-deadline:
			t.Fatalf("not listening:\n%s", out.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	s := out.String()
	u := s[strings.Index(s, "http://"):]
	u = u[:strings.Index(u, "/?")]
	res, err := http.Get(u + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET /: %d", res.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
