package main

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/feed"
	"github.com/midstream-go/midstream/live"
	"github.com/midstream-go/midstream/notify"
)

//go:embed index.html
var indexHTML []byte

const (
	feedPageSize = 50
	maxPostLen   = 500
	keepAlive    = 15 * time.Second
)

// validUser keeps user names simple: they become parts of Redis keys.
var validUser = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// app is the http.Handler of the web app.
type app struct {
	rdb     *redis.Client
	feed    *feed.Feed
	notify  *notify.Notifier
	mux     *http.ServeMux
	streams atomic.Int64 // open event streams, for the test's leak check
}

func newApp(rdb *redis.Client) (*app, error) {
	f, err := feed.New(rdb)
	if err != nil {
		return nil, err
	}
	n, err := notify.New(rdb, notify.WithMaxLen(1000))
	if err != nil {
		return nil, err
	}
	a := &app{rdb: rdb, feed: f, notify: n, mux: http.NewServeMux()}
	a.mux.HandleFunc("GET /{$}", a.index)
	a.mux.HandleFunc("GET /events", a.events)
	a.mux.HandleFunc("POST /api/post", a.post)
	a.mux.HandleFunc("POST /api/follow", a.follow)
	a.mux.HandleFunc("POST /api/unfollow", a.follow)
	a.mux.HandleFunc("POST /api/read", a.markRead)
	return a, nil
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

func (a *app) index(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(indexHTML)
}

// readChannel is where a mark-read is announced, so that every open page of
// the user (on any instance of the app) refreshes its badge.
func (a *app) readChannel(user string) string { return a.notify.Channel(user) + ":read" }

// post is feed.Append, then notify.Send to each follower of the author.
func (a *app) post(w http.ResponseWriter, r *http.Request) {
	user, ok := userParam(w, r, "user")
	if !ok {
		return
	}
	text := strings.TrimSpace(r.FormValue("text"))
	if text == "" || len(text) > maxPostLen {
		http.Error(w, fmt.Sprintf("text must hold 1 to %d bytes", maxPostLen), http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	id, err := a.feed.Append(ctx, user, map[string]string{"type": "post", "text": text})
	if err != nil {
		serverError(w, err)
		return
	}
	// Not atomic with the Append: a crash here loses notifications, never
	// the post. The followers set is kept by feed.Follow. The idempotency
	// key makes a repeat of these sends (a retry) notify nobody twice.
	followers, err := a.feed.Followers(ctx, user)
	if err != nil {
		serverError(w, err)
		return
	}
	for _, f := range followers {
		if _, err := a.notify.Send(ctx, f, user+" posted: "+text, notify.WithIdempotencyKey("post:"+id),
			notify.WithFields(map[string]string{"postId": id})); err != nil {
			serverError(w, err)
			return
		}
	}
	writeJSON(w, map[string]any{"id": id, "notified": len(followers)})
}

// follow serves /api/follow and /api/unfollow.
func (a *app) follow(w http.ResponseWriter, r *http.Request) {
	user, ok := userParam(w, r, "user")
	if !ok {
		return
	}
	target, ok := userParam(w, r, "target")
	if !ok {
		return
	}
	if target == user {
		http.Error(w, "you cannot follow yourself", http.StatusBadRequest)
		return
	}
	var err error
	if r.URL.Path == "/api/unfollow" {
		err = a.feed.Unfollow(r.Context(), user, target)
	} else {
		err = a.feed.Follow(r.Context(), user, target)
	}
	if err != nil {
		serverError(w, err)
		return
	}
	following, err := a.feed.Following(r.Context(), user)
	if err != nil {
		serverError(w, err)
		return
	}
	writeJSON(w, map[string]any{"following": nonNil(following)})
}

// markRead is notify.MarkRead with an id, notify.MarkAllRead without.
func (a *app) markRead(w http.ResponseWriter, r *http.Request) {
	user, ok := userParam(w, r, "user")
	if !ok {
		return
	}
	ctx := r.Context()
	var err error
	if id := r.FormValue("id"); id != "" {
		err = a.notify.MarkRead(ctx, user, id)
	} else {
		err = a.notify.MarkAllRead(ctx, user)
	}
	if err != nil {
		serverError(w, err)
		return
	}
	if err := a.rdb.Publish(ctx, a.readChannel(user), "read").Err(); err != nil {
		serverError(w, err)
		return
	}
	n, err := a.unreadCount(r, user)
	if err != nil {
		serverError(w, err)
		return
	}
	writeJSON(w, map[string]any{"unread": n})
}

// postJSON is one activity as the page shows it.
type postJSON struct {
	ID     string `json:"id"`
	Author string `json:"author"`
	Text   string `json:"text"`
}

type noteJSON struct {
	ID      string `json:"id"`
	Content string `json:"content"`
}

type snapshot struct {
	User      string     `json:"user"`
	Following []string   `json:"following"`
	Feed      []postJSON `json:"feed"` // newest first
	Unread    int64      `json:"unread"`
	Notes     []noteJSON `json:"notes"` // unread, newest first
}

// events is the page's event stream: a "snapshot" event, then "post" for
// each new activity in the user's feed and "unread" (with "note" before it
// for a new notification) whenever the unread count may have changed. It
// subscribes before reading the snapshot, so nothing falls between the two;
// the page drops posts it already has. Everything it starts ends with the
// request's context, that is when the client goes away.
func (a *app) events(w http.ResponseWriter, r *http.Request) {
	user, ok := userParam(w, r, "user")
	if !ok {
		return
	}
	ctx := r.Context()
	a.streams.Add(1)
	defer a.streams.Add(-1)

	posts, err := a.feed.Live(ctx, user, live.Now)
	if err != nil {
		serverError(w, err)
		return
	}
	defer posts.Close()
	notes, err := a.notify.Live(ctx, user, live.Now)
	if err != nil {
		serverError(w, err)
		return
	}
	defer notes.Close()
	reads := a.rdb.Subscribe(ctx, a.readChannel(user))
	defer reads.Close()
	if _, err := reads.Receive(ctx); err != nil { // the SUBSCRIBE confirmation
		serverError(w, err)
		return
	}
	snap, err := a.snapshot(r, user)
	if err != nil {
		serverError(w, err)
		return
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	send := func(event string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return err
		}
		return rc.Flush()
	}
	sendUnread := func() error {
		n, err := a.unreadCount(r, user)
		if err != nil {
			return err
		}
		return send("unread", map[string]int64{"unread": n})
	}
	if err := send("snapshot", snap); err != nil {
		return
	}
	ping := time.NewTicker(keepAlive)
	defer ping.Stop()
	readMsgs := reads.Channel()
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case e, ok := <-posts.C():
			if !ok {
				logEnd(user, posts.Err())
				return
			}
			err = send("post", toPost(e))
		case e, ok := <-notes.C():
			if !ok {
				logEnd(user, notes.Err())
				return
			}
			nt := notify.Decode(e)
			if err = send("note", noteJSON{ID: nt.ID, Content: nt.Content}); err == nil {
				err = sendUnread()
			}
		case <-readMsgs:
			err = sendUnread()
		case <-ping.C:
			if _, err = fmt.Fprint(w, ": ping\n\n"); err == nil {
				err = rc.Flush()
			}
		}
		if err != nil {
			if ctx.Err() == nil {
				log.Printf("feed-web: events for %s: %v", user, err)
			}
			return
		}
	}
}

func (a *app) snapshot(r *http.Request, user string) (snapshot, error) {
	ctx := r.Context()
	s := snapshot{User: user, Feed: []postJSON{}, Notes: []noteJSON{}}
	var err error
	if s.Following, err = a.feed.Following(ctx, user); err != nil {
		return s, err
	}
	s.Following = nonNil(s.Following)
	page, err := a.feed.Read(ctx, user, "", feedPageSize)
	if err != nil {
		return s, err
	}
	for _, e := range page.Items {
		s.Feed = append(s.Feed, toPost(e))
	}
	if s.Unread, err = a.unreadCount(r, user); err != nil {
		return s, err
	}
	unread, err := a.notify.Unread(ctx, user, "", 20)
	if err != nil {
		return s, err
	}
	for _, nt := range unread.Items {
		s.Notes = append(s.Notes, noteJSON{ID: nt.ID, Content: nt.Content})
	}
	return s, nil
}

// unreadCount is notify.UnreadCount; past the count budget it shows the
// lower bound it got.
func (a *app) unreadCount(r *http.Request, user string) (int64, error) {
	n, err := a.notify.UnreadCount(r.Context(), user)
	if errors.Is(err, notify.ErrCountBudget) {
		err = nil
	}
	return n, err
}

func toPost(e midstream.Entry) postJSON {
	return postJSON{ID: e.ID, Author: e.Fields[feed.FieldActor], Text: e.Fields["text"]}
}

func userParam(w http.ResponseWriter, r *http.Request, name string) (string, bool) {
	u := strings.TrimSpace(r.FormValue(name))
	if !validUser.MatchString(u) {
		http.Error(w, name+": 1 to 32 letters, digits, '_' or '-'", http.StatusBadRequest)
		return "", false
	}
	return u, true
}

func serverError(w http.ResponseWriter, err error) {
	if errors.Is(err, midstream.ErrInvalidOption) || errors.Is(err, midstream.ErrInvalidStream) || errors.Is(err, midstream.ErrInvalidID) {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	log.Printf("feed-web: %v", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

func logEnd(user string, err error) {
	if err != nil {
		log.Printf("feed-web: live subscription for %s ended: %v", user, err)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
