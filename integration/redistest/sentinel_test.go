package redistest_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/midstream-go/midstream/integration/redistest"
)

// TestSentinelSet: a failover client of a Sentinel set writes to the
// master; after a kill of the master a replica is promoted, the client
// reads there what a replica had confirmed, and the old master comes back
// as a replica; SENTINEL FAILOVER then promotes a replica again and the
// client follows.
func TestSentinelSet(t *testing.T) {
	s := redistest.StartSentinel(t)
	ctx := context.Background()
	rdb := s.NewClient()
	if err := rdb.Set(ctx, "k", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.Wait(ctx, 1, 5000).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 = %d, %v", n, err)
	}

	killed, err := s.KillMaster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	promoted, err := s.WaitFailover(ctx, killed)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(ctx, killed); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitReplicas(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got, err := rdb.Get(ctx, "k").Result(); err != nil || got != "1" {
		t.Fatalf("after the kill of %s: GET k = %q, %v", killed, got, err)
	}
	if err := rdb.Set(ctx, "k", "2", 0).Err(); err != nil {
		t.Fatalf("after the kill: SET: %v", err)
	}
	if n, err := rdb.Wait(ctx, 1, 5000).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 on %s, with %s restarted as its replica = %d, %v", promoted, killed, n, err)
	}

	old, err := s.Failover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if old != promoted {
		t.Fatalf("SENTINEL FAILOVER of %s, want %s", old, promoted)
	}
	again, err := s.WaitFailover(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if again != killed {
		t.Fatalf("SENTINEL FAILOVER promoted %s, want the only replica %s", again, killed)
	}
	if got, err := rdb.Get(ctx, "k").Result(); err != nil || got != "2" {
		t.Fatalf("after SENTINEL FAILOVER to %s: GET k = %q, %v", again, got, err)
	}
	if err := rdb.Set(ctx, "k", "3", 0).Err(); err != nil {
		t.Fatalf("after SENTINEL FAILOVER: SET: %v", err)
	}
	// Both switches were announced (a stall could add more).
	sw := s.Switches()
	killSwitch := slices.ContainsFunc(sw, func(x redistest.Switch) bool { return x.From == killed && x.To == promoted })
	if !killSwitch || len(sw) < 2 || sw[len(sw)-1].To != again {
		t.Errorf("switches %+v; want %s to %s among them and %s last", sw, killed, promoted, again)
	}
}

// TestSentinelOptions: WithReplicas starts that many replicas, and
// WithServerArgs reaches the data nodes: with min-replicas-to-write 2, the
// master refuses writes (NOREPLICAS) once one of its two replicas is gone.
func TestSentinelOptions(t *testing.T) {
	s := redistest.StartSentinel(t, redistest.WithReplicas(2), redistest.WithServerArgs("--min-replicas-to-write", "2"))
	if n := len(s.NodeAddrs()); n != 3 {
		t.Fatalf("%d data nodes, want 3", n)
	}
	rdb := s.NewClient()
	ctx := context.Background()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.Wait(ctx, 2, 5000).Result(); err != nil || n != 2 {
		t.Fatalf("WAIT 2 = %d, %v", n, err)
	}
	// min-replicas-to-write 2: with a replica gone, the master refuses writes.
	if err := s.Kill(s.NodeAddrs()[2]); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		err := rdb.Set(ctx, "k", "w", 0).Err()
		if err != nil && strings.HasPrefix(err.Error(), "NOREPLICAS") {
			break
		}
		if i == 100 {
			t.Fatalf("SET with one of two replicas gone: %v, want NOREPLICAS", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
