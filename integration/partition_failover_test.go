package integration

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/producer"
)

// TestClusterPartitionFailover kills (SIGKILL) the master of one partition
// of a stream of three, spread over the cluster's three masters, while
// durable producers write to every partition and two consumers of a group
// read them all. The other partitions must go on being written and handled
// during the failover; the killed one must resume by itself; every entry a
// durable publish acknowledged must be in its partition and handled, with
// nothing left pending, and a duplicate handler call may only be of an entry
// first handled before the promotion (an acknowledgement the dead master had
// not replicated).
func TestClusterPartitionFailover(t *testing.T) {
	srv := redistest.Start(t)
	if srv.Cluster == nil {
		t.Skip("needs the cluster backend (MIDSTREAM_REDIS_BACKEND=cluster)")
	}
	ctx := context.Background()
	stream, group := srv.Key("orders"), "g"
	layout := midstream.Partitions{Count: 3}
	parts, err := layout.Keys(stream)
	if err != nil {
		t.Fatal(err)
	}
	masters := map[string]bool{}
	for _, k := range parts {
		m, err := srv.Cluster.MasterOf(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		masters[m] = true
	}
	t.Logf("partitions %q on %d masters", parts, len(masters))
	// A partition key for each partition.
	keyOf := make([]string, len(parts))
	for n, found := 0, 0; found < len(parts); n++ {
		k := "key-" + strconv.Itoa(n)
		if p := midstream.PartitionOf(k, len(parts)); keyOf[p] == "" {
			keyOf[p], found = k, found+1
		}
	}

	type event struct {
		part int
		at   time.Time
	}
	var mu sync.Mutex
	acked := map[string]time.Time{} // partition/ID → when the durable publish returned
	var published []event
	handled := map[string]int{}
	firstCall := map[string]time.Time{}
	var handledEvents []event

	p := newProducer[map[string]string](t, srv.NewUniversalClient(), stream,
		producer.WithPartitions(layout), producer.WithDurable(1, time.Second))
	run, stopAll := context.WithCancel(ctx)
	defer stopAll()
	var stopPub atomic.Bool
	var pubWG sync.WaitGroup
	for part, key := range keyOf {
		pubWG.Add(1)
		go func() {
			defer pubWG.Done()
			for n := 0; !stopPub.Load(); n++ {
				cctx, cancel := context.WithTimeout(run, 2*time.Second)
				id, err := p.Publish(cctx, map[string]string{"n": strconv.Itoa(n)}, producer.PartitionKey(key))
				cancel()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				mu.Lock()
				acked[parts[part]+"/"+id] = time.Now()
				published = append(published, event{part, time.Now()})
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	partIndex := map[string]int{}
	for i, k := range parts {
		partIndex[k] = i
	}
	h := consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
		mu.Lock()
		defer mu.Unlock()
		k := m.Stream + "/" + m.ID
		handled[k]++
		if _, ok := firstCall[k]; !ok {
			firstCall[k] = time.Now()
		}
		handledEvents = append(handledEvents, event{partIndex[m.Stream], time.Now()})
		return nil
	})
	var stops []func() error
	for i := range 2 {
		c := newConsumer(t, srv.NewUniversalClient(), stream, group, h, consumer.WithPartitions(layout),
			consumer.WithName(fmt.Sprint("c", i)), consumer.WithMinIdle(2*time.Second), consumer.WithClaimInterval(500*time.Millisecond))
		stops = append(stops, runConsumer(t, c))
	}

	time.Sleep(2 * time.Second)
	killed, err := srv.Cluster.MasterOf(ctx, parts[0])
	if err != nil {
		t.Fatal(err)
	}
	killAt := time.Now()
	if err := srv.Cluster.Kill(killed); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Cluster.WaitFailover(ctx, parts[0], killed); err != nil {
		t.Fatal(err)
	}
	failoverAt := time.Now()
	if err := srv.Cluster.Restart(killed); err != nil {
		t.Fatal(err)
	}
	// Wait for partition 0 to be written and handled again.
	var back time.Time
	for deadline := killAt.Add(20 * time.Second); time.Now().Before(deadline) && back.IsZero(); {
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		for _, e := range handledEvents {
			if e.part == 0 && e.at.After(failoverAt) {
				back = e.at
				break
			}
		}
		mu.Unlock()
	}
	if back.IsZero() {
		t.Fatal("partition 0 not handled again 20 s after the kill")
	}
	mu.Lock()
	var others, othersHandled, zero int
	for _, e := range published {
		if e.at.After(killAt) && e.at.Before(failoverAt) {
			if e.part == 0 {
				zero++
			} else {
				others++
			}
		}
	}
	for _, e := range handledEvents {
		if e.part != 0 && e.at.After(killAt) && e.at.Before(failoverAt) {
			othersHandled++
		}
	}
	mu.Unlock()
	outage := failoverAt.Sub(killAt)
	t.Logf("master of partition 0 killed; promotion after %s; partition 0 handled again %s after the kill",
		outage.Round(time.Millisecond), back.Sub(killAt).Round(time.Millisecond))
	t.Logf("meanwhile, before the promotion: %d durable publishes and %d handler calls on the other partitions, %d publishes on partition 0",
		others, othersHandled, zero)
	if others == 0 || othersHandled == 0 {
		t.Errorf("the other partitions stalled with partition 0's master: %d publishes, %d handled", others, othersHandled)
	}

	time.Sleep(time.Second)
	stopPub.Store(true)
	pubWG.Wait()
	inStream := map[string]bool{}
	for _, k := range parts {
		entries, err := srv.Client.XRange(ctx, k, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			inStream[k+"/"+e.ID] = true
		}
	}
	caughtUp := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for k := range inStream {
			if handled[k] == 0 {
				return false
			}
		}
		for _, k := range parts {
			if pendingCount(t, srv.Client, k, group) != 0 {
				return false
			}
		}
		return true
	}
	for wait := time.Now().Add(30 * time.Second); !caughtUp() && time.Now().Before(wait); {
		time.Sleep(50 * time.Millisecond)
	}
	for _, stop := range stops {
		if err := stop(); err != nil {
			t.Errorf("consumer Run: %v", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	lost, unhandled, dups := 0, 0, 0
	for k := range acked {
		if !inStream[k] {
			lost++
		}
	}
	for k := range inStream {
		if handled[k] == 0 {
			unhandled++
		}
	}
	for k, n := range handled {
		if n > 1 {
			dups += n - 1
			if !firstCall[k].Before(failoverAt) {
				t.Errorf("entry %s handled %d times, first after the promotion", k, n)
			}
		}
	}
	for _, k := range parts {
		if n := pendingCount(t, srv.Client, k, group); n != 0 {
			t.Errorf("%s: %d entries still pending", k, n)
		}
	}
	t.Logf("durable publishes acknowledged: %d; lost %d; partitions hold %d; unhandled %d; duplicate handler calls %d",
		len(acked), lost, len(inStream), unhandled, dups)
	if lost > 0 {
		t.Errorf("%d entries acknowledged as durable are not in their partition", lost)
	}
	if unhandled > 0 {
		t.Errorf("%d entries never reached the handler", unhandled)
	}
}
