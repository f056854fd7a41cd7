package redistest_test

import (
	"context"
	"testing"

	"github.com/midstream-go/midstream/integration/redistest"
)

// TestSentinelSet: a failover client of a Sentinel set writes to the
// master; after a kill of the master and after SENTINEL FAILOVER, a replica
// is promoted, the client writes to it and reads what was written before,
// and the old master comes back as a replica.
func TestSentinelSet(t *testing.T) {
	s := redistest.StartSentinel(t)
	ctx := context.Background()
	rdb := s.NewClient()
	if err := rdb.Set(ctx, "k", "0", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Wait(ctx, 1, 5000).Err(); err != nil {
		t.Fatal(err)
	}
	for i, fault := range []string{"kill", "failover"} {
		var old string
		var err error
		if fault == "kill" {
			old, err = s.KillMaster(ctx)
		} else {
			old, err = s.Failover(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		promoted, err := s.WaitFailover(ctx, old)
		if err != nil {
			t.Fatal(err)
		}
		if fault == "kill" {
			if err := s.Restart(ctx, old); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.WaitReplicas(ctx, 1); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s promoted in place of %s", fault, promoted, old)
		if got, err := rdb.Get(ctx, "k").Result(); err != nil || got != string(rune('0'+i)) {
			t.Fatalf("after the %s: GET k = %q, %v", fault, got, err)
		}
		if err := rdb.Set(ctx, "k", string(rune('1'+i)), 0).Err(); err != nil {
			t.Fatalf("after the %s: SET: %v", fault, err)
		}
		if err := rdb.Wait(ctx, 1, 5000).Err(); err != nil {
			t.Fatal(err)
		}
	}
}
