package integration

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/integration/redistest"
)

// TestSentinelFailover runs the failover test of TestClusterFailover on a
// Sentinel deployment (a master, one replica, three Sentinels), with
// go-redis failover clients: durable producers (WithDurable counting every
// replica) and plain ones, two consumers of a group, a live subscription
// and a Trimmer work on a stream while its master is killed (SIGKILL;
// restarted as a replica once the replica is promoted) or failed over by
// SENTINEL FAILOVER (the old master keeps running, and accepting writes
// from clients that have not yet heard of the switch, until the Sentinels
// turn it into a replica, some 10 s later). No entry a durable publish
// reported written may be lost, every loop must resume on its own, the
// live subscriber must see every entry of the stream once, and the
// group's state must survive. It logs the recovery times and the lost and
// duplicated counts.
//
// After SENTINEL FAILOVER the new master has no replica until the
// Sentinels convert the old master, so durable publishes fail as not
// durable until then: their bound is looser. "failover fenced" runs the
// servers with min-replicas-to-write 1: the old master refuses writes as
// soon as its replica leaves it, so plain publishes fail rather than being
// lost, and so do all writes (XREADGROUP and XACK too) until the old master
// follows the new one. "failover two replicas" has a second replica, which
// keeps following the old master, confirming its writes, until the
// Sentinels move it to the new one: durable publishes must count both
// replicas (WithDurable(2)) to lose nothing.
func TestSentinelFailover(t *testing.T) {
	for _, tc := range []struct {
		name, fault string
		replicas    int
		fence       bool
	}{
		{"kill", "kill", 1, false},
		{"failover", "failover", 1, false},
		{"failover fenced", "failover", 1, true},
		{"failover two replicas", "failover", 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) { sentinelFailover(t, tc.fault, tc.replicas, tc.fence) })
	}
}

func sentinelFailover(t *testing.T, fault string, replicas int, fence bool) {
	opts := []redistest.SentinelOption{redistest.WithReplicas(replicas)}
	if fence {
		opts = append(opts, redistest.WithServerArgs("--min-replicas-to-write", "1"))
	}
	s := redistest.StartSentinel(t, opts...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs of the Sentinel set:\n%s", s.Logs())
		}
	})
	env := failoverEnv{fault: fault, admin: s.NewClient(), durableReplicas: replicas,
		key:       func(name string) string { return "test:" + name },
		newClient: func() redis.UniversalClient { return s.NewClient() },
		master:    s.MasterAddr,
		breakMaster: func(_ context.Context, addr string) error {
			return s.Kill(addr)
		},
		waitFailover: s.WaitFailover,
		mend:         s.Restart,
		promotions: func() []time.Time {
			var at []time.Time
			for _, sw := range s.Switches() {
				at = append(at, sw.At)
			}
			return at
		},
	}
	if fault == "failover" {
		env.breakMaster = func(ctx context.Context, addr string) error {
			old, err := s.Failover(ctx)
			if err == nil && old != addr {
				t.Fatalf("SENTINEL FAILOVER of %s, want %s", old, addr)
			}
			return err
		}
		env.mend = nil // the Sentinels turn the old master into a replica
		env.fromPromotion = true
		env.durableLimit = 30 * time.Second
		if fence {
			env.limit = 30 * time.Second
		}
	}
	runFailover(t, env)
}
