package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/health"
	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/internal/ops"
	"github.com/midstream-go/midstream/internal/ops/opstest"
)

// cli runs the command in-process against url and returns what it printed
// and its exit code.
func cli(t *testing.T, url string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	if url != "" {
		args = append([]string{"--url", url}, args...)
	}
	code = run(ctx, args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

// cliJSON runs the command with --output json, expects success and decodes
// its output into v.
func cliJSON(t *testing.T, url string, v any, args ...string) {
	t.Helper()
	out, errOut, code := cli(t, url, "", append(args, "--output", "json")...)
	if code != 0 {
		t.Fatalf("midstream %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	if err := jsonDecode(out, v); err != nil {
		t.Fatalf("midstream %s: %v in %s", strings.Join(args, " "), err, out)
	}
}

// jsonDecode decodes the first JSON value of out into v, refusing fields v
// does not know.
func jsonDecode(out string, v any) error {
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// fixture is a stream with two groups, pending entries and dead letters
// on a real server (see opstest.Build).
type fixture struct {
	url, addr string
	stream    string
	ids       []string // the stream's entries, n=0..9
	rdb       *redis.Client
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	srv := redistest.Start(t)
	f := fixture{url: serverURL(srv), addr: srv.Addr(), stream: srv.Key("{orders}"), rdb: srv.Client}
	f.ids = opstest.Build(t, f.rdb, f.stream)
	return f
}

// serverURL is the URL the command connects to srv with.
func serverURL(srv *redistest.Server) string {
	if u := os.Getenv(redistest.EnvURL); srv.Backend == "url" && u != "" {
		return u
	}
	return "redis://" + srv.Addr()
}

func (f fixture) dlqLen(t *testing.T) int64 {
	t.Helper()
	n, err := f.rdb.XLen(context.Background(), deadletter.Key(f.stream)).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCLIStreamsAndStream(t *testing.T) {
	f := newFixture(t)
	prefix := strings.TrimSuffix(f.stream, "{orders}")

	var list streamsOutput
	cliJSON(t, f.url, &list, "streams", prefix+"*")
	if len(list.Streams) != 1 || list.Truncated {
		t.Fatalf("streams: %+v", list)
	}
	s := list.Streams[0]
	if s.Stream != f.stream || s.Length != 10 || s.Groups != 2 || s.Pending != 3 || s.DeadLetters != 3 ||
		s.DeadLetterKey != deadletter.Key(f.stream) || s.Lag == nil || *s.Lag != 8 || s.OldestPendingAgeMs <= 0 ||
		s.EntriesAdded != 10 || s.EntriesRead != 7 {
		t.Fatalf("summary: %+v (lag %v)", s, s.Lag)
	}
	cliJSON(t, f.url, &list, "streams", prefix+"*", "--with-dlq", "--sort", "length")
	if len(list.Streams) != 2 || list.Streams[0].Stream != f.stream || list.Streams[1].Stream != deadletter.Key(f.stream) {
		t.Fatalf("streams --with-dlq --sort length: %+v", list.Streams)
	}

	var d ops.StreamDetail
	cliJSON(t, f.url, &d, "stream", f.stream)
	want, err := health.Snapshot(context.Background(), f.rdb, f.stream)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Health.Groups) != 2 || d.Health.DeadLetter != want.DeadLetter || d.Health.Length != 10 {
		t.Fatalf("stream: %+v", d.Health)
	}
	for i, g := range d.Health.Groups {
		w := want.Groups[i]
		if g.Name != w.Name || g.Pending != w.Pending || g.OldestPendingID != w.OldestPendingID || g.Lag != w.Lag ||
			len(g.Consumers) != 1 || g.Consumers[0].Pending != w.Consumers[0].Pending || g.Consumers[0].Name != w.Consumers[0].Name {
			t.Fatalf("group %d: %+v, want %+v", i, g, w)
		}
	}
	// ship holds n=1 pending, billing n=3: only n=0 may go.
	wantTrim := ops.TrimView{Policy: "acknowledged", Removable: 1, Cutoff: f.ids[1], LengthAfter: 9,
		HeldBackBy: []ops.HeldBack{{Group: "ship", Until: f.ids[1], Reason: "pending"}, {Group: "billing", Until: f.ids[3], Reason: "pending"}}}
	got := d.Trim
	got.PolicyCutoff, got.HeldBack = "", 0
	if fmt.Sprint(got) != fmt.Sprint(wantTrim) || d.Trim.HeldBack != 9 {
		t.Fatalf("trim preview\n got %+v\nwant %+v", d.Trim, wantTrim)
	}
	cliJSON(t, f.url, &d, "stream", f.stream, "--max-len", "8")
	if d.Trim.Policy != "max_len=8" || d.Trim.Removable != 1 || d.Trim.HeldBack != 1 {
		t.Fatalf("trim preview --max-len 8: %+v", d.Trim)
	}
	if n := f.rdb.XLen(context.Background(), f.stream).Val(); n != 10 {
		t.Fatalf("a preview trimmed: length %d", n)
	}

	out, errOut, code := cli(t, f.url, "", "stream", f.stream)
	if code != 0 || !strings.Contains(out, "billing") || !strings.Contains(out, "ship needs "+f.ids[1]+" (pending)") {
		t.Fatalf("stream table: exit %d\n%s%s", code, out, errOut)
	}
}

func TestCLIPendingAndEntry(t *testing.T) {
	f := newFixture(t)
	var got []string
	after := ""
	for range 5 {
		var p ops.PendingPage
		cliJSON(t, f.url, &p, "pending", f.stream, "billing", "--limit", "1", "--after", after, "--with-fields")
		for _, e := range p.Entries {
			if e.Consumer != "w1" || e.Deliveries != 1 || e.Fields["n"] == "" {
				t.Fatalf("pending entry %+v", e)
			}
			got = append(got, e.Fields["n"])
		}
		if p.Next == "" {
			break
		}
		after = p.Next
	}
	if !slices.Equal(got, []string{"3", "4"}) {
		t.Fatalf("pending pages: %v", got)
	}
	var e ops.Entry
	cliJSON(t, f.url, &e, "entry", f.stream, f.ids[7])
	if e.ID != f.ids[7] || e.Fields["n"] != "7" || e.Fields["kind"] != "b" || e.Time.IsZero() {
		t.Fatalf("entry %+v", e)
	}
	if _, errOut, code := cli(t, f.url, "", "entry", f.stream, "1-1"); code != 1 || !strings.Contains(errOut, "no entry") {
		t.Fatalf("missing entry: exit %d %s", code, errOut)
	}
}

func TestCLIDeadLetters(t *testing.T) {
	f := newFixture(t)
	var l dlqListOutput
	cliJSON(t, f.url, &l, "dlq", "list", f.stream, "--group", "billing")
	if len(l.Entries) != 2 || l.Entries[0].Reason != opstest.ReasonTimeout || l.Entries[0].OriginalID != f.ids[1] ||
		l.Entries[0].Group != "billing" || l.Entries[0].Consumer != "w1" || l.Entries[0].Fields["n"] != "1" {
		t.Fatalf("dlq list --group billing: %+v", l)
	}
	cliJSON(t, f.url, &l, "dlq", "list", f.stream, "--reason", "decode")
	if len(l.Entries) != 1 || l.Entries[0].Group != "ship" {
		t.Fatalf("dlq list --reason decode: %+v", l)
	}
	cliJSON(t, f.url, &l, "dlq", "list", f.stream, "--older-than", "1h")
	if len(l.Entries) != 0 {
		t.Fatalf("dlq list --older-than 1h: %+v", l)
	}
	cliJSON(t, f.url, &l, "dlq", "list", f.stream)
	if len(l.Entries) != 3 {
		t.Fatalf("dlq list: %+v", l)
	}
	all := l.Entries
	var show ops.DeadLetter
	cliJSON(t, f.url, &show, "dlq", "show", f.stream, all[2].ID)
	if show.ID != all[2].ID || show.Group != "ship" || show.Reason != opstest.ReasonDecode || show.Source != f.stream {
		t.Fatalf("dlq show: %+v", show)
	}

	// A dry run and an unconfirmed redrive change nothing.
	var ch dlqChangeOutput
	cliJSON(t, f.url, &ch, "dlq", "redrive", f.stream, "--group", "billing", "--dry-run")
	if !ch.DryRun || !slices.Equal(ch.IDs, []string{all[0].ID, all[1].ID}) || ch.Redrive != nil {
		t.Fatalf("redrive --dry-run: %+v", ch)
	}
	if _, errOut, code := cli(t, f.url, "", "dlq", "redrive", f.stream, "--group", "billing"); code != 1 || !strings.Contains(errOut, "--yes") {
		t.Fatalf("unconfirmed redrive: exit %d: %s", code, errOut)
	}
	if n := f.dlqLen(t); n != 3 {
		t.Fatalf("dead letters after a dry run and a refusal: %d", n)
	}

	// Redrive moves exactly the filtered entries back to their group only
	// (billing's redrive stream); the stream itself gets nothing.
	cliJSON(t, f.url, &ch, "dlq", "redrive", f.stream, "--group", "billing", "--yes", "--rate", "0")
	if ch.Redrive == nil || ch.Redrive.Redriven != 2 || len(ch.Redrive.NewIDs) != 2 {
		t.Fatalf("redrive: %+v", ch)
	}
	ctx := context.Background()
	if n := f.rdb.XLen(ctx, f.stream).Val(); n != int64(len(f.ids)) {
		t.Fatalf("stream length after the redrive: %d", n)
	}
	tail, err := f.rdb.XRange(ctx, deadletter.RedriveKey(f.stream, "billing"), "-", "+").Result()
	if err != nil || len(tail) != 2 || tail[0].Values["n"] != "1" || tail[1].Values["n"] != "2" {
		t.Fatalf("redriven entries: %v %v", tail, err)
	}
	for k := range tail[0].Values {
		if strings.HasPrefix(k, "dlq:") {
			t.Fatalf("provenance left in a redriven entry: %v", tail[0].Values)
		}
	}
	if n := f.dlqLen(t); n != 1 {
		t.Fatalf("dead letters after the redrive: %d", n)
	}

	// Delete by ID, interactive confirmation.
	a := &app{in: strings.NewReader("y\n"), out: &bytes.Buffer{}, errOut: &bytes.Buffer{}, interactive: true}
	root := a.rootCommand()
	root.SetArgs([]string{"--url", f.url, "dlq", "delete", f.stream, "--id", all[2].ID})
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatal(err)
	}
	a.close()
	if n := f.dlqLen(t); n != 0 {
		t.Fatalf("dead letters after the delete: %d", n)
	}
	if _, errOut, code := cli(t, f.url, "", "dlq", "delete", f.stream, "--yes"); code != 2 { // no selection
		t.Fatalf("delete without a selection: exit %d: %s", code, errOut)
	}
	f.rdb.XAdd(ctx, &redis.XAddArgs{Stream: deadletter.Key(f.stream), Values: []string{"n", "x"}})
	cliJSON(t, f.url, &ch, "dlq", "purge", f.stream, "--dry-run")
	if ch.Deleted != 1 || f.dlqLen(t) != 1 {
		t.Fatalf("purge --dry-run: %+v", ch)
	}
	cliJSON(t, f.url, &ch, "dlq", "purge", f.stream, "--yes")
	if ch.Deleted != 1 || f.dlqLen(t) != 0 {
		t.Fatalf("purge: %+v", ch)
	}
}

func TestCLITail(t *testing.T) {
	f := newFixture(t)
	// From an ID: what follows it, filtered.
	out, errOut, code := cli(t, f.url, "", "tail", f.stream, "--from", f.ids[5], "--filter", "kind=a", "--count", "2", "-o", "json")
	if code != 0 {
		t.Fatalf("tail: exit %d: %s", code, errOut)
	}
	var got []string
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var e ops.Entry
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Fields["n"])
	}
	if !slices.Equal(got, []string{"6", "8"}) {
		t.Fatalf("tail --from: %v", got)
	}

	// From now: only what is added after the start, every entry, in order.
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 100; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			f.rdb.XAdd(ctx, &redis.XAddArgs{Stream: f.stream, Values: []string{"n", fmt.Sprint(i)}})
		}
	})
	out, errOut, code = cli(t, f.url, "", "tail", f.stream, "--count", "50", "-o", "json")
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("tail: exit %d: %s", code, errOut)
	}
	dec = json.NewDecoder(strings.NewReader(out))
	prev := -1
	for dec.More() {
		var e ops.Entry
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		var n int
		fmt.Sscan(e.Fields["n"], &n)
		if n < 100 || (prev >= 0 && n != prev+1) {
			t.Fatalf("tail from now: %d after %d", n, prev)
		}
		prev = n
	}
	if prev < 149 {
		t.Fatalf("tail from now: last %d", prev)
	}
}

// TestCLITailWrongType: a key of another type is a configuration error: the
// tail reports its retries and ends with it.
func TestCLITailWrongType(t *testing.T) {
	srv := redistest.Start(t)
	key := srv.Key("plain")
	srv.Client.Set(context.Background(), key, "v", 0)
	_, errOut, code := cli(t, serverURL(srv), "", "tail", key, "--from", "beginning")
	if code != 1 || !strings.Contains(errOut, "WRONGTYPE") || !strings.Contains(errOut, "retrying") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func TestCLITop(t *testing.T) {
	f := newFixture(t)
	prefix := strings.TrimSuffix(f.stream, "{orders}")
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			f.rdb.XAdd(ctx, &redis.XAddArgs{Stream: f.stream, Values: []string{"n", "x"}})
		}
	})
	out, errOut, code := cli(t, f.url, "", "top", prefix+"*", "--iterations", "2", "--interval", "300ms", "-o", "json")
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("top: exit %d: %s", code, errOut)
	}
	frames := strings.Split(strings.TrimSpace(out), "\n")
	if len(frames) != 2 {
		t.Fatalf("top: %d frames: %s", len(frames), out)
	}
	for _, fr := range frames {
		var frame topFrame
		if err := json.Unmarshal([]byte(fr), &frame); err != nil {
			t.Fatal(err)
		}
		if len(frame.Streams) != 1 || frame.Streams[0].AddedPerSec <= 0 || frame.Streams[0].Pending != 3 {
			t.Fatalf("top frame: %s", fr)
		}
	}
	out, _, code = cli(t, f.url, "", "top", prefix+"*", "--iterations", "1", "--interval", "100ms")
	if code != 0 || !strings.Contains(out, "ADDED/S") || !strings.Contains(out, f.stream) {
		t.Fatalf("top table: %s", out)
	}
}

func TestCLIUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"pending"},
		{"streams", "--sort", "bogus"},
		{"--output", "yaml", "streams"},
		{"stream", "s\n"},
		{"tail", "s", "--filter", "nonsense"},
		{"dlq", "redrive", "s", "--id", "nope"},
		{"dlq", "redrive", "s", "--id", "1-1", "--group", "g"},
		{"dlq", "list", "s", "--limit", "0"},
		{"top", "--interval", "1ms"},
		{"dashboard", "--listen", "0.0.0.0:0", "--write"},
		{"--cluster", "a:1", "--sentinel-master", "m", "streams"},
		{"--url", "http://x", "streams"},
		{"dlq", "redrive", "s", "--rate", "-1"},
		{"dlq", "redrive", "s", "--max", "0"},
		{"dlq", "delete", "s", "--yes"},
		{"pending", "s", "g", "--limit", "0"},
		{"streams", "--limit", "0"},
	} {
		// Each is refused before connecting (127.0.0.1:1 would refuse).
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"--url", "redis://127.0.0.1:1", "--timeout", "1s"}, args...), strings.NewReader(""), &out, &errOut)
		if code != 2 || errOut.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q", args, code, errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, strings.NewReader(""), &out, &errOut); code != 0 || !strings.Contains(out.String(), "dashboard") {
		t.Fatalf("--help: exit %d\n%s", code, out.String())
	}
}

// TestCLIACLUser: an ACL user in the URL; a user allowed to read only can
// list and inspect, and a redrive is refused by Redis (NOPERM) with nothing
// moved.
func TestCLIACLUser(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	user := fmt.Sprintf("viewer-%d", time.Now().UnixNano()) // unique on a shared server
	if err := f.rdb.Do(ctx, "ACL", "SETUSER", user, "on", ">viewer-pw", "~*", "+@read", "+@connection", "+scan", "+evalsha", "+eval", "+script").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.rdb.Do(context.Background(), "ACL", "DELUSER", user) })
	url := "redis://" + user + ":viewer-pw@" + f.addr
	var l dlqListOutput
	cliJSON(t, url, &l, "dlq", "list", f.stream)
	if len(l.Entries) != 3 {
		t.Fatalf("dlq list as viewer: %+v", l)
	}
	_, errOut, code := cli(t, url, "", "dlq", "redrive", f.stream, "--yes", "--rate", "0")
	if code != 1 || !strings.Contains(errOut, "NOPERM") {
		t.Fatalf("redrive as viewer: exit %d: %s", code, errOut)
	}
	if n := f.dlqLen(t); n != 3 {
		t.Fatalf("a refused redrive moved entries: %d left", n)
	}
	bad := "redis://" + user + ":wrong@" + f.addr
	if _, errOut, code := cli(t, bad, "", "streams"); code != 1 || !strings.Contains(errOut, "WRONGPASS") {
		t.Fatalf("wrong password: exit %d: %s", code, errOut)
	}
}
