package integration

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/integration/redistest"
)

// TestCrashPillsIsolated: 300 entries, 1% of them crash pills (the worker
// process exits while handling one), two worker processes restarted by a
// supervisor whenever they die, MaxDeliveries 3. Exactly the pills are
// dead-lettered, with a reason saying their owner crashed; every other
// entry is handled, none is dead-lettered for its neighbours' crashes, and
// nothing stays pending.
func TestCrashPillsIsolated(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	stream, group, ledger := srv.Key("jobs"), "g", srv.Key("ledger")
	const n, every, maxDeliveries = 300, 100, 3
	createGroup(t, srv.Client, stream, group)
	pills := map[string]bool{}
	pipe := srv.Client.Pipeline()
	var cmds []*redis.StringCmd
	for i := range n {
		fields := []string{"n", strconv.Itoa(i)}
		if i%every == every/2 {
			fields = append(fields, "pill", "1")
		}
		cmds = append(cmds, pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: fields}))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for i, c := range cmds {
		if i%every == every/2 {
			pills[c.Val()] = true
		}
	}

	env := workerEnv(stream, group, ledger, map[string]string{
		envWorkerMinIdle:  "500ms",
		envWorkerClaim:    "100ms",
		envWorkerMaxDeliv: strconv.Itoa(maxDeliveries),
	})
	names := []string{"w1", "w2"}
	procs := map[string]*proc{}
	for _, name := range names {
		procs[name] = spawnWorker(t, srv, name, env)
	}
	restarts := 0
	deadline := time.Now().Add(3 * time.Minute)
	for {
		dl := xlenOf(t, srv.Client, deadletter.Key(stream))
		if hlen(t, srv.Client, ledger) == n-int64(len(pills)) && dl >= int64(len(pills)) && pendingCount(t, srv.Client, stream, group) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not done after 3 minutes: %d handled, %d dead-lettered, %d pending, %d restarts",
				hlen(t, srv.Client, ledger), dl, pendingCount(t, srv.Client, stream, group), restarts)
		}
		// The supervisor: a worker that died is started again under its name.
		for _, name := range names {
			p := procs[name]
			select {
			case <-p.done:
				var ee *exec.ExitError
				if !errors.As(p.err, &ee) || ee.ExitCode() != pillExitCode {
					t.Fatalf("worker %s ended with %v, not by a pill\n%s", name, p.err, tail(p.stderr.String(), 4096))
				}
				restarts++
				procs[name] = spawnWorker(t, srv, name, env)
			default:
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, name := range names {
		select {
		case <-procs[name].ready:
		case <-procs[name].done:
			continue
		case <-time.After(workerReadyTimeout):
		}
		procs[name].Term()
	}
	t.Logf("%d worker restarts", restarts)

	calls := hashCounts(t, srv.Client, callsKey(ledger))
	dl := dlqAll(t, srv.Client, stream)
	innocent := 0
	for _, e := range dl {
		if !pills[e.OriginalID] {
			innocent++
			t.Errorf("innocent entry %s dead-lettered after %d handler calls: %q", e.OriginalID, calls[e.OriginalID], e.Error)
			continue
		}
		if !strings.Contains(e.Error, "crashed") {
			t.Errorf("pill %s dead-lettered with reason %q, want one saying its owner crashed", e.OriginalID, e.Error)
		}
	}
	if len(dl)-innocent != len(pills) {
		t.Errorf("%d pills dead-lettered, want %d", len(dl)-innocent, len(pills))
	}
	for id := range pills {
		if c := calls[id]; c < 1 || c > maxDeliveries {
			t.Errorf("pill %s: %d handler calls, want 1 to %d", id, c, maxDeliveries)
		}
	}
	handled := hashCounts(t, srv.Client, ledger)
	for id, c := range calls {
		if !pills[id] && handled[id] == 0 {
			t.Errorf("entry %s called %d times, never handled", id, c)
		}
	}
	if restarts < len(pills) {
		t.Errorf("%d restarts, want at least one per pill", restarts)
	}
}
