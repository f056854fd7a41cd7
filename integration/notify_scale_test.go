package integration

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/notify"
)

// fillScript appends ARGV[1] blocks of ten entries written the article's
// way: five notifications, then a read marker for each of them.
var fillScript = redis.NewScript(`
for b = 1, tonumber(ARGV[1]) do
  local ids = {}
  for i = 1, 5 do
    ids[i] = redis.call('XADD', KEYS[1], '*', 'content', 'n', 'read', 'false', 'createdAt', '1700000000000')
  end
  for i = 1, 5 do
    redis.call('XADD', KEYS[1], '*', 'markedReadId', ids[i], 'readAt', '1700000000001')
  end
end
return 1
`)

// slowLogLen is the slow log's length in TestNotifyLargeStreamNoLongScript,
// which logs every command (scripts' own calls included) longer than 1 ms.
const slowLogLen = 100_000

// startSlowLog makes the server log every command over a millisecond
// (room for slowLogLen) and clears the slow log and the command statistics.
func startSlowLog(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	for _, kv := range [][2]string{{"slowlog-log-slower-than", "1000"}, {"slowlog-max-len", strconv.FormatInt(slowLogLen, 10)}} {
		if err := rdb.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.SlowLogReset(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
}

// slowest returns the longest script call (EVAL, EVALSHA) and the longest
// command of any kind that the server's slow log holds.
func slowest(t *testing.T, rdb redis.UniversalClient) (script, any time.Duration, calls int) {
	t.Helper()
	logs, err := rdb.SlowLogGet(context.Background(), -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(logs)) >= slowLogLen {
		t.Fatalf("the slow log is full (%d entries): it may have lost the longest call", len(logs))
	}
	for _, l := range logs {
		any = max(any, l.Duration)
		if len(l.Args) > 0 && strings.HasPrefix(strings.ToLower(l.Args[0]), "eval") {
			script = max(script, l.Duration)
			calls++
		}
	}
	return script, any, calls
}

// TestNotifyLargeStreamNoLongScript builds a notification stream of a
// million entries (100k with -short) the article's way, every notification
// marked read by a marker, then seven unread ones, and runs each operation
// on it, recording every command over a millisecond in the slow log. No
// script may read more than a bounded step: the longest script call and
// the mean are logged, and must stay far below what a scan of the stream
// takes (over a second at this size).
func TestNotifyLargeStreamNoLongScript(t *testing.T) {
	srv := redistest.Start(t)
	if srv.Backend == "url" {
		t.Skip("changes the server's slow log settings: not on a shared server")
	}
	srv.SkipOnCluster("reads one node's slow log and command statistics")
	ctx := context.Background()
	n := newNotifier(t, srv)
	const user = "big"
	stream := n.Stream(user)
	blocks := 100_000
	if testing.Short() {
		blocks = 10_000
	}
	for done := 0; done < blocks; done += 10_000 {
		if err := fillScript.Run(ctx, srv.Client, []string{stream}, min(10_000, blocks-done)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var unread []string
	for range 7 {
		unread = append(unread, mustSendContent(t, n, user, "new"))
	}
	startSlowLog(t, srv.Client)
	t.Logf("stream of %d entries", srv.Client.XLen(ctx, stream).Val())

	// The first read runs no script at all; its budget stops it.
	start := time.Now()
	if _, err := n.UnreadCount(ctx, user); !errors.Is(err, notify.ErrCountBudget) {
		t.Fatalf("first UnreadCount: %v, want ErrCountBudget", err)
	}
	if n := srv.Client.Info(ctx, "commandstats").Val(); strings.Contains(n, "cmdstat_eval") {
		t.Fatalf("UnreadCount ran a script: %s", n)
	}
	t.Logf("first UnreadCount: %s", time.Since(start))
	start = time.Now()
	if err := n.Sync(ctx, user); err != nil {
		t.Fatal(err)
	}
	t.Logf("Sync: %s", time.Since(start))
	if c, err := n.UnreadCount(ctx, user); err != nil || c != 7 {
		t.Fatalf("UnreadCount after Sync = %d, %v; want 7", c, err)
	}
	if err := n.MarkRead(ctx, user, unread[0]); err != nil {
		t.Fatal(err)
	}
	if got := unreadIDs(t, n, user); len(got) != 6 {
		t.Fatalf("Unread lists %d, want 6", len(got))
	}
	if err := n.MarkAllRead(ctx, user); err != nil {
		t.Fatal(err)
	}
	if c, err := n.UnreadCount(ctx, user); err != nil || c != 0 {
		t.Fatalf("UnreadCount after MarkAllRead = %d, %v", c, err)
	}
	if got := articleUnread(t, srv.Client, stream); len(got) != 0 {
		t.Fatalf("the article sees %d unread", len(got))
	}
	script, anyCmd, calls := slowest(t, srv.Client)
	t.Logf("%d script calls over 1ms, longest %s; longest command of any kind %s", calls, script, anyCmd)
	t.Logf("commandstats: %s", evalStats(srv.Client.Info(ctx, "commandstats").Val()))
	// Bounds far above a step's cost (about a millisecond) and far below a
	// scan's (seconds at this size), so that a loaded machine does not fail
	// the test and an O(stream) script does.
	if script > time.Second {
		t.Fatalf("a script held Redis for %s", script)
	}
	if mean := evalMean(t, srv.Client.Info(ctx, "commandstats").Val()); mean > 10*time.Millisecond {
		t.Fatalf("script calls took %s on average", mean)
	}
}

// evalStats returns the commandstats lines of script calls.
func evalStats(info string) string {
	var out []string
	for _, l := range strings.Split(info, "\n") {
		if strings.HasPrefix(l, "cmdstat_eval") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return strings.Join(out, "; ")
}

// evalMean returns the mean time of the EVALSHA calls in commandstats.
func evalMean(t *testing.T, info string) time.Duration {
	t.Helper()
	for _, l := range strings.Split(info, "\n") {
		if !strings.HasPrefix(l, "cmdstat_evalsha:") {
			continue
		}
		for _, kv := range strings.Split(strings.TrimSpace(l[len("cmdstat_evalsha:"):]), ",") {
			if v, ok := strings.CutPrefix(kv, "usec_per_call="); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					t.Fatal(err)
				}
				return time.Duration(f * float64(time.Microsecond))
			}
		}
	}
	t.Fatal("no EVALSHA calls in commandstats")
	return 0
}
