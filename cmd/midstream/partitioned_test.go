package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/internal/ops"
	"github.com/midstream-go/midstream/producer"
)

// partitionedStream publishes 24 entries to a 3-partition stream with a
// partitioned producer and has a partitioned consumer of group "billing"
// handle them, dead-lettering those with n%4 == 0 (each to its partition's
// dead-letter stream); then one more entry per partition is read and left
// pending by consumer "stuck". It returns the partitions.
func partitionedStream(t *testing.T, rdb redis.UniversalClient, stream string) []string {
	t.Helper()
	ctx := context.Background()
	layout := midstream.Partitions{Count: 3}
	p, err := producer.New[map[string]string](rdb, stream, producer.WithPartitions(layout))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 24 {
		if _, err := p.Publish(ctx, map[string]string{"n": strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	var handled atomic.Int64
	h := consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		defer handled.Add(1)
		if n, _ := strconv.Atoi(m.Fields()["n"]); n%4 == 0 {
			return consumer.Permanent(fmt.Errorf("entry %d refused", n))
		}
		return nil
	})
	c, err := consumer.New(rdb, stream, "billing", h, consumer.WithPartitions(layout),
		consumer.WithStart(consumer.StartBeginning), consumer.WithBlock(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	for deadline := time.Now().Add(time.Minute); handled.Load() < 24; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the consumer handled %d of 24 entries", handled.Load())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	parts := p.Partitions()
	for _, k := range parts {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: k, Values: []string{"n", "late"}}).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "billing", Consumer: "stuck", Streams: []string{k, ">"}, Count: 1}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	return parts
}

// checkCLIPartitioned runs the commands that know partitioned streams,
// connecting with conn.
func checkCLIPartitioned(t *testing.T, rdb redis.UniversalClient, conn []string, stream string, parts []string) {
	t.Helper()
	ctx := context.Background()
	run := func(args ...string) (string, string, int) {
		t.Helper()
		return cli(t, "", "", append(append([]string{}, conn...), args...)...)
	}
	decode := func(v any, args ...string) {
		t.Helper()
		out, errOut, code := run(append(args, "--output", "json")...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		if err := jsonDecode(out, v); err != nil {
			t.Fatalf("%v: %v in %s", args, err, out)
		}
	}
	var length, dead int64
	dlqs := map[string]int64{}
	for _, k := range parts {
		length += rdb.XLen(ctx, k).Val()
		dlqs[k] = rdb.XLen(ctx, deadletter.Key(k)).Val()
		dead += dlqs[k]
	}
	if length != 27 || dead != 6 {
		t.Fatalf("the partitions hold %d entries and %d dead letters", length, dead)
	}

	// streams: a line for the partitioned stream, its partitions marked.
	var list streamsOutput
	decode(&list, "streams", stream+"*")
	byName := map[string]ops.StreamSummary{}
	for _, s := range list.Streams {
		byName[s.Stream] = s
	}
	total, ok := byName[stream]
	// (The consumer's redrive streams, one per partition and group, match
	// too: streams of their own.)
	if !ok || total.Partitions != len(parts) || total.Length != length ||
		total.DeadLetters != dead || total.Pending != 3 || total.Lag == nil || *total.Lag != 0 || total.PartitionOf != "" {
		t.Fatalf("streams: %+v", list.Streams)
	}
	for _, k := range parts {
		if s := byName[k]; s.PartitionOf != stream || s.Partitions != 0 || s.DeadLetters != dlqs[k] || s.Pending != 1 {
			t.Fatalf("partition %s: %+v", k, s)
		}
	}
	out, _, code := run("streams", stream+"*")
	if code != 0 || !strings.Contains(out, "PARTITIONS") || !strings.Contains(out, "of "+stream) {
		t.Fatalf("streams table: %d\n%s", code, out)
	}

	// stream: the totals, then each partition.
	var d ops.StreamDetail
	decode(&d, "stream", stream)
	if d.Health.Stream != stream || d.Health.Length != length || d.Health.DeadLetter.Length != dead || len(d.Partitions) != len(parts) {
		t.Fatalf("stream %s: %+v", stream, d.Health)
	}
	g, ok := d.Health.Group("billing")
	if !ok || g.Pending != 3 || g.ConsumerCount != 2 || !g.LagKnown || g.Lag != 0 {
		t.Fatalf("stream %s, group billing: %+v", stream, g)
	}
	var removable, held int64
	for i, p := range d.Partitions {
		if p.Health.Stream != parts[i] || p.Health.DeadLetter.Key != deadletter.Key(parts[i]) ||
			p.Health.DeadLetter.Length != dlqs[parts[i]] || p.Partitions != nil {
			t.Fatalf("partition %d: %+v", i, p.Health)
		}
		// The preview keeps the pending entry of "stuck": every entry
		// before it is removable, none from it on.
		pending := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: parts[i], Group: "billing", Start: "-", End: "+", Count: 1}).Val()
		before := rdb.XRange(ctx, parts[i], "-", "("+pending[0].ID).Val()
		if p.Trim.Removable != int64(len(before)) || p.Trim.Cutoff != pending[0].ID {
			t.Fatalf("partition %d trim preview: %+v, want %d removable up to %s", i, p.Trim, len(before), pending[0].ID)
		}
		removable += p.Trim.Removable
		held += p.Trim.HeldBack
	}
	if d.Trim.Removable != removable || d.Trim.HeldBack != held || d.Trim.LengthAfter != length-removable {
		t.Fatalf("total trim preview: %+v", d.Trim)
	}
	for _, hb := range d.Trim.HeldBackBy {
		if hb.Stream == "" || hb.Group != "billing" {
			t.Fatalf("total held back by %+v", d.Trim.HeldBackBy)
		}
	}
	out, _, code = run("stream", stream)
	if code != 0 || !strings.Contains(out, "partitioned, 3 partitions") || !strings.Contains(out, deadletter.Key(parts[1])) {
		t.Fatalf("stream table: %d\n%s", code, out)
	}
	if _, errOut, code := run("stream", stream, "--dlq", "x"); code != 2 || !strings.Contains(errOut, "own dead-letter stream") {
		t.Fatalf("stream --dlq on a partitioned stream: %d %s", code, errOut)
	}

	// dlq and pending name the partitions instead.
	for _, args := range [][]string{{"dlq", "list", stream}, {"dlq", "purge", stream, "--dry-run"}} {
		_, errOut, code := run(args...)
		if code != 2 || !strings.Contains(errOut, "partitioned stream") || !strings.Contains(errOut, fmt.Sprintf("Dead letters: %d", dead)) {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		for _, k := range parts {
			if dlqs[k] > 0 && !strings.Contains(errOut, fmt.Sprintf("%s (%d)", k, dlqs[k])) {
				t.Fatalf("%v does not name %s: %s", args, k, errOut)
			}
		}
	}
	if _, errOut, code := run("pending", stream, "billing"); code != 2 || !strings.Contains(errOut, parts[0]) {
		t.Fatalf("pending on a partitioned stream: %d %s", code, errOut)
	}
	// On a partition, they work as on any stream.
	var l dlqListOutput
	decode(&l, "dlq", "list", parts[0])
	if l.Key != deadletter.Key(parts[0]) || int64(len(l.Entries)) != dlqs[parts[0]] {
		t.Fatalf("dlq list %s: %+v", parts[0], l)
	}
	for _, e := range l.Entries {
		if e.Source != parts[0] || e.Group != "billing" {
			t.Fatalf("dead letter of %s: %+v", parts[0], e)
		}
	}
}

func TestCLIPartitioned(t *testing.T) {
	srv := redistest.Start(t)
	if srv.Cluster != nil {
		t.Skip("TestCLIPartitionedCluster covers the cluster")
	}
	stream := srv.Key("orders")
	parts := partitionedStream(t, srv.Client, stream)
	checkCLIPartitioned(t, srv.Client, []string{"--url", serverURL(srv)}, stream, parts)
}

func TestCLIPartitionedCluster(t *testing.T) {
	addrs := startCluster(t)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer rdb.Close()
	parts := partitionedStream(t, rdb, "orders")
	masters := map[string]bool{}
	for _, k := range parts {
		n, err := rdb.MasterForKey(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		masters[n.Options().Addr] = true
	}
	if len(masters) != 3 {
		t.Fatalf("the 3 partitions live on %d masters", len(masters))
	}
	checkCLIPartitioned(t, rdb, []string{"--cluster", addrs[0]}, "orders", parts)
}
