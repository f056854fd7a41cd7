package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/dashboard"
	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/internal/ops"
	"github.com/midstream-go/midstream/internal/ops/opstest"
)

// env is a dashboard over a real server holding the opstest fixture.
type env struct {
	rdb    *redis.Client
	stream string
	ids    []string
	srv    *httptest.Server
	csrf   string
}

func newEnv(t *testing.T, opts ...dashboard.Option) *env {
	t.Helper()
	s := redistest.Start(t)
	e := &env{rdb: s.Client, stream: s.Key("{orders}")}
	e.ids = opstest.Build(t, e.rdb, e.stream)
	pattern := strings.TrimSuffix(e.stream, "{orders}") + "*"
	d, err := dashboard.New(e.rdb, append([]dashboard.Option{dashboard.WithPatterns(pattern),
		dashboard.WithSampleInterval(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(d)
	t.Cleanup(e.srv.Close)
	page := e.get(t, "/", http.StatusOK)
	m := regexp.MustCompile(`name="midstream-csrf" content="([0-9a-f]{32})"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no anti-forgery token in the page:\n%s", page)
	}
	e.csrf = m[1]
	return e
}

func (e *env) get(t *testing.T, path string, status int) string {
	t.Helper()
	res, err := http.Get(e.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != status {
		t.Fatalf("GET %s: %s, want %d: %s", path, res.Status, status, b)
	}
	return string(b)
}

func (e *env) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(e.get(t, path, http.StatusOK)), v); err != nil {
		t.Fatal(err)
	}
}

// post sends a write action with the headers given and returns the status
// and body.
func (e *env) post(t *testing.T, path, body string, headers map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (e *env) dlqLen(t *testing.T) int64 {
	t.Helper()
	return e.rdb.XLen(context.Background(), deadletter.Key(e.stream)).Val()
}

// overview mirrors api/overview's JSON.
type overview struct {
	Writable      bool `json:"writable"`
	TokenRequired bool `json:"token_required"`
	Streams       []struct {
		ops.StreamRate
		History []dashboard.Point `json:"history"`
	} `json:"streams"`
}

func TestOverviewShowsRealValues(t *testing.T) {
	e := newEnv(t)
	var o overview
	e.getJSON(t, "/api/overview", &o)
	if o.Writable || o.TokenRequired || len(o.Streams) != 1 {
		t.Fatalf("overview: %+v", o)
	}
	s := o.Streams[0]
	if s.Stream != e.stream || s.Lag == nil || *s.Lag != 8 || s.Pending != 3 || s.DeadLetters != 3 || s.Length != 10 {
		t.Fatalf("stream: %+v", s.StreamRate)
	}
	// The charts fill as the page asks again, at most once per interval.
	time.Sleep(150 * time.Millisecond)
	e.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: e.stream, Values: []string{"n", "10"}})
	e.getJSON(t, "/api/overview", &o)
	h := o.Streams[0].History
	if len(h) != 2 || h[0].Length != 10 || h[1].Length != 11 || *h[1].Lag != 9 || h[1].AddedPerSec <= 0 || h[1].T <= h[0].T {
		t.Fatalf("history: %+v", h)
	}

	var d ops.StreamDetail
	e.getJSON(t, "/api/stream?stream="+escape(e.stream), &d)
	if len(d.Health.Groups) != 2 || d.Trim.Removable != 1 || len(d.Health.Groups[0].Consumers) != 1 {
		t.Fatalf("stream detail: %+v", d)
	}
	var p ops.PendingPage
	e.getJSON(t, "/api/pending?fields=1&stream="+escape(e.stream)+"&group=billing", &p)
	if len(p.Entries) != 2 || p.Entries[0].ID != e.ids[3] || p.Entries[0].Fields["n"] != "3" {
		t.Fatalf("pending: %+v", p)
	}
	var dl struct {
		Key     string           `json:"key"`
		Length  int64            `json:"length"`
		Entries []ops.DeadLetter `json:"entries"`
	}
	e.getJSON(t, "/api/dlq?stream="+escape(e.stream)+"&group=billing", &dl)
	if dl.Length != 3 || len(dl.Entries) != 2 || dl.Entries[0].Reason != opstest.ReasonTimeout || dl.Key != deadletter.Key(e.stream) {
		t.Fatalf("dlq: %+v", dl)
	}
	var en ops.Entry
	e.getJSON(t, "/api/entry?stream="+escape(e.stream)+"&id="+e.ids[4], &en)
	if en.Fields["n"] != "4" {
		t.Fatalf("entry: %+v", en)
	}
	e.get(t, "/api/entry?stream="+escape(e.stream)+"&id=1-1", http.StatusNotFound)
	e.get(t, "/api/stream?stream="+escape(e.stream+"-missing"), http.StatusNotFound)
	e.get(t, "/api/stream?stream=", http.StatusBadRequest)
	e.get(t, "/api/pending?stream=s&group=g&limit=-1", http.StatusBadRequest)
	e.get(t, "/api/dlq?stream=s&limit=100000", http.StatusBadRequest)
	if js := e.get(t, "/app.js", http.StatusOK); !strings.Contains(js, "api/overview") {
		t.Fatal("app.js not served")
	}
}

func TestWritesRefusedWhenReadOnly(t *testing.T) {
	e := newEnv(t)
	body := `{"stream":"` + e.stream + `","ids":["` + e.dlqIDs(t)[0] + `"]}`
	for _, path := range []string{"/api/dlq/redrive", "/api/dlq/delete"} {
		status, b := e.post(t, path, body, map[string]string{dashboard.CSRFHeader: e.csrf})
		if status != http.StatusForbidden || !strings.Contains(b, "read-only") {
			t.Fatalf("%s on a read-only dashboard: %d %s", path, status, b)
		}
	}
	if n := e.dlqLen(t); n != 3 {
		t.Fatalf("dead letters: %d", n)
	}
}

func (e *env) dlqIDs(t *testing.T) []string {
	t.Helper()
	var ids []string
	for _, m := range e.rdb.XRange(context.Background(), deadletter.Key(e.stream), "-", "+").Val() {
		ids = append(ids, m.ID)
	}
	return ids
}

func TestWritesNeedTheAntiForgeryTokenAndSameOrigin(t *testing.T) {
	e := newEnv(t, dashboard.WithWriteActions())
	dl := e.dlqIDs(t)
	body := `{"stream":"` + e.stream + `","ids":["` + dl[0] + `"]}`
	for _, tc := range []struct {
		name    string
		headers map[string]string
	}{
		{"no token", nil},
		{"wrong token", map[string]string{dashboard.CSRFHeader: strings.Repeat("0", 32)}},
		{"cross-site fetch", map[string]string{dashboard.CSRFHeader: e.csrf, "Sec-Fetch-Site": "cross-site"}},
		{"foreign origin", map[string]string{dashboard.CSRFHeader: e.csrf, "Origin": "https://evil.example"}},
	} {
		status, b := e.post(t, "/api/dlq/redrive", body, tc.headers)
		if status != http.StatusForbidden {
			t.Fatalf("%s: %d %s", tc.name, status, b)
		}
	}
	if n := e.dlqLen(t); n != 3 {
		t.Fatalf("a refused write changed the dead letters: %d left", n)
	}
	// A trusted origin passes the same-origin check.
	trusted := newEnv(t, dashboard.WithWriteActions(), dashboard.WithTrustedOrigins("https://admin.example"))
	tbody := `{"stream":"` + trusted.stream + `","ids":["` + trusted.dlqIDs(t)[0] + `"]}`
	if status, b := trusted.post(t, "/api/dlq/delete", tbody, map[string]string{dashboard.CSRFHeader: trusted.csrf,
		"Origin": "https://admin.example", "Sec-Fetch-Site": "cross-site"}); status != http.StatusOK {
		t.Fatalf("trusted origin: %d %s", status, b)
	}
	// Same origin, with the page's token: the one entry goes back.
	status, b := e.post(t, "/api/dlq/redrive", body, map[string]string{dashboard.CSRFHeader: e.csrf,
		"Origin": e.srv.URL, "Sec-Fetch-Site": "same-origin"})
	var res ops.RedriveResult
	if status != http.StatusOK || json.Unmarshal([]byte(b), &res) != nil || res.Redriven != 1 || res.NewIDs[dl[0]] == "" {
		t.Fatalf("redrive: %d %s", status, b)
	}
	if n := e.dlqLen(t); n != 2 {
		t.Fatalf("dead letters after the redrive: %d", n)
	}
	// Back to its group only: billing's redrive stream.
	last := e.rdb.XRevRangeN(context.Background(), deadletter.RedriveKey(e.stream, "billing"), "+", "-", 1).Val()
	if len(last) != 1 || last[0].ID != res.NewIDs[dl[0]] || last[0].Values["n"] != "1" {
		t.Fatalf("redriven entry: %+v", last)
	}
	// Bad bodies.
	for _, bad := range []string{`{"stream":"` + e.stream + `","ids":[]}`, `{"stream":"` + e.stream + `","ids":["x"]}`,
		`{"stream":"","ids":["1-1"]}`, `{"nope":1}`, `not json`} {
		if status, b := e.post(t, "/api/dlq/delete", bad, map[string]string{dashboard.CSRFHeader: e.csrf}); status != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", bad, status, b)
		}
	}
	status, b = e.post(t, "/api/dlq/delete", `{"stream":"`+e.stream+`","ids":["`+dl[1]+`"]}`, map[string]string{dashboard.CSRFHeader: e.csrf})
	if status != http.StatusOK || !strings.Contains(b, `"deleted":1`) || e.dlqLen(t) != 1 {
		t.Fatalf("delete: %d %s", status, b)
	}
}

func TestWritesNeedTheBearerToken(t *testing.T) {
	e := newEnv(t, dashboard.WithWriteActions(), dashboard.WithToken("s3cret"))
	var o overview
	e.getJSON(t, "/api/overview", &o)
	if !o.Writable || !o.TokenRequired {
		t.Fatalf("overview: %+v", o)
	}
	dl := e.dlqIDs(t)
	body := `{"stream":"` + e.stream + `","ids":["` + dl[0] + `","` + dl[1] + `"]}`
	for _, auth := range []string{"", "Bearer wrong", "s3cret", "Basic s3cret"} {
		status, b := e.post(t, "/api/dlq/redrive", body, map[string]string{dashboard.CSRFHeader: e.csrf, "Authorization": auth})
		if status != http.StatusUnauthorized {
			t.Fatalf("Authorization %q: %d %s", auth, status, b)
		}
	}
	if n := e.dlqLen(t); n != 3 {
		t.Fatalf("a refused write changed the dead letters: %d left", n)
	}
	status, b := e.post(t, "/api/dlq/redrive", body, map[string]string{dashboard.CSRFHeader: e.csrf, "Authorization": "Bearer s3cret"})
	if status != http.StatusOK || !strings.Contains(b, `"redriven":2`) || e.dlqLen(t) != 1 {
		t.Fatalf("redrive with the token: %d %s", status, b)
	}
}

// sse reads server-sent events.
type sse struct {
	res *http.Response
	r   *bufio.Reader
}

func openTail(t *testing.T, url string, header http.Header) *sse {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if header != nil {
		req.Header = header
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return &sse{res: res, r: bufio.NewReader(res.Body)}
}

// next returns the next event's name, id and data.
func (s *sse) next(t *testing.T) (event, id, data string) {
	t.Helper()
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && event != "":
			return event, id, data
		case strings.HasPrefix(line, "event: "):
			event = line[7:]
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		}
	}
}

func TestTailIsGapFreeAndResumes(t *testing.T) {
	e := newEnv(t, dashboard.WithMaxTails(1))
	ctx := context.Background()
	url := e.srv.URL + "/api/tail?stream=" + escape(e.stream) + "&filter=kind%3Da"
	s := openTail(t, url, nil)
	if ev, _, _ := s.next(t); ev != "ready" || s.res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("first event %q, content type %q", ev, s.res.Header.Get("Content-Type"))
	}
	// A second tail is over the limit.
	if res, err := http.Get(url); err != nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second tail: %v %v", res.Status, err)
	} else {
		res.Body.Close()
	}
	var added []string
	for i := range 6 {
		kind := "a"
		if i%2 == 1 {
			kind = "b"
		}
		id := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: e.stream, Values: []string{"n", "t", "kind", kind}}).Val()
		if kind == "a" {
			added = append(added, id)
		}
	}
	var lastID string
	for _, want := range added[:2] {
		ev, id, data := s.next(t)
		var en ops.Entry
		if ev != "entry" || id != want || json.Unmarshal([]byte(data), &en) != nil || en.ID != want || en.Fields["kind"] != "a" {
			t.Fatalf("event %q id %q data %s, want entry %s", ev, id, data, want)
		}
		lastID = id
	}
	s.res.Body.Close()
	// A reconnecting EventSource sends Last-Event-ID: the tail resumes
	// after it, so the third entry comes, once.
	var s2 *sse
	for deadline := time.Now().Add(5 * time.Second); ; {
		h := http.Header{}
		h.Set("Last-Event-ID", lastID)
		s2 = openTail(t, url, h)
		if s2.res.StatusCode == http.StatusOK || time.Now().After(deadline) {
			break
		}
		s2.res.Body.Close() // the first tail's slot is not free yet
		time.Sleep(20 * time.Millisecond)
	}
	s2.next(t) // ready
	if ev, id, _ := s2.next(t); ev != "entry" || id != added[2] {
		t.Fatalf("resumed tail: %q %q, want %s", ev, id, added[2])
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	for _, o := range []dashboard.Option{
		nil,
		dashboard.WithPatterns(""),
		dashboard.WithSampleInterval(time.Millisecond),
		dashboard.WithSampleInterval(2 * dashboard.MaxSampleInterval),
		dashboard.WithHistory(-time.Second),
		dashboard.WithHistory(dashboard.MaxHistory + 1),
		dashboard.WithMaxStreams(-1),
		dashboard.WithMaxStreams(ops.MaxStreams + 1),
		dashboard.WithRedriveRate(-1),
		dashboard.WithMaxTails(dashboard.MaxTails + 1),
		dashboard.WithLogger(nil),
		dashboard.WithTrustedOrigins("not a url"),
	} {
		if _, err := dashboard.New(rdb, o); !errors.Is(err, midstream.ErrInvalidOption) {
			t.Errorf("option %v: %v", o, err)
		}
	}
	if _, err := dashboard.New(rdb, dashboard.WithSampleInterval(dashboard.MinSampleInterval), dashboard.WithHistory(dashboard.MaxHistory)); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Errorf("too many points: %v", err)
	}
	if _, err := dashboard.New(nil); !errors.Is(err, midstream.ErrInvalidOption) {
		t.Errorf("nil client: %v", err)
	}
}

func TestRunStopsWithItsContext(t *testing.T) {
	s := redistest.Start(t)
	before := goleak.IgnoreCurrent()
	d, err := dashboard.New(s.Client, dashboard.WithSampleInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	time.Sleep(250 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	goleak.VerifyNone(t, before)
}

func escape(s string) string {
	return url.QueryEscape(s)
}
