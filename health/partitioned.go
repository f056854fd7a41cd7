package health

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/deadletter"
)

// PartitionedHealth is a snapshot of a partitioned stream (see
// midstream.Partitions): the health of each of its partitions, and their
// total.
type PartitionedHealth struct {
	// Stream is the logical stream's name.
	Stream string
	// Partitions are the snapshots of the partitions, in partition order:
	// Partitions[i].Stream is partition i's key, its DeadLetter the
	// partition's own dead-letter stream (deadletter.Key of the partition),
	// its Delayed the partition's delay set. A partition whose stream does
	// not exist yet (nothing was published to it and no group created on
	// it) is reported empty: length 0, no groups, with its dead-letter
	// stream and delay set.
	Partitions []StreamHealth
	// Total is the logical stream's health, the partitions folded into one:
	//
	//   - Length, EntriesAdded, DeadLetter.Length, Delayed.Size and
	//     Delayed.Overdue are sums; Delayed.OldestOverdueAge is the
	//     largest. LastID, DeadLetter.Key and Delayed.Key are "": each
	//     partition has its own.
	//   - Groups are merged by name, in the order they first appear
	//     (partition 0's order, then groups found only in later
	//     partitions). Pending is summed. Lag and EntriesRead are summed,
	//     and known (LagKnown, EntriesReadKnown) only when every partition
	//     has the group and Redis told them in every one: a group missing
	//     from a partition has not read it at all. The oldest pending
	//     entry (OldestPendingID, Age, Idle, Deliveries) is the oldest of
	//     all partitions, by its ID's time: its ID is an ID in the
	//     partition OldestPendingPartition names. LastDeliveredID is "".
	//   - A group's Consumers are merged by name (a consumer of a
	//     partitioned stream reads every partition under one name):
	//     Pending summed, Idle and Inactive the smallest (the most recent
	//     activity in any partition; Inactive negative only when it never
	//     read in any). ConsumerCount is the number of distinct consumer
	//     names; WithoutConsumers, the largest count of one partition.
	Total StreamHealth
	// Errors[i] is why partition i could not be read (its node down, say),
	// nil when it was; nil when every partition was read. A partition that
	// was not read counts as empty in Total, so the groups' Lag and
	// EntriesRead are unknown there.
	Errors []error
	// Time is when the snapshot began, by the local clock (Total.Time too).
	Time time.Time
}

// Group returns the total of the group named name, and whether any
// partition has it.
func (p PartitionedHealth) Group(name string) (GroupHealth, bool) { return p.Total.Group(name) }

// OldestPendingPartition returns the index in Partitions of the partition
// that holds group's oldest pending entry (Total's OldestPendingID), or -1
// when nothing is pending in the group.
func (p PartitionedHealth) OldestPendingPartition(group string) int {
	best := -1
	var bestID midstream.ID
	for i, s := range p.Partitions {
		g, ok := s.Group(group)
		if !ok || g.OldestPendingID == "" {
			continue
		}
		id, err := midstream.ParseID(g.OldestPendingID)
		if err != nil {
			continue
		}
		if best < 0 || id.Compare(bestID) < 0 {
			best, bestID = i, id
		}
	}
	return best
}

// partitionWorkers bounds the partitions SnapshotPartitioned reads at once.
const partitionWorkers = 8

// SnapshotPartitioned returns the health of the partitioned stream stream:
// a Snapshot of every partition and their total (see PartitionedHealth).
// It reads the layout stored in Redis (midstream.StoredPartitions): a
// stream without one, not partitioned or not used by a partitioned
// producer or consumer yet, fails with an error wrapping
// midstream.ErrNoStream that says so.
//
// When some partitions cannot be read, SnapshotPartitioned still returns
// the others, with Errors saying which failed and Total over those read,
// along with an error joining the failures.
//
// The partitions are read a few at a time (at most 8 at once), each as
// Snapshot reads a stream: the work is one HGETALL of the layout plus
// O(groups + consumers) per partition, never a scan of a stream. The
// partitions are read at slightly different moments, so under load the
// totals are not one instant's.
//
// Options are Snapshot's, applied to every partition; WithDeadLetterKey
// is refused (with an error wrapping midstream.ErrInvalidOption), since
// each partition has its own dead-letter stream, deadletter.Key of the
// partition. The caller keeps ownership of client.
func SnapshotPartitioned(ctx context.Context, client redis.UniversalClient, stream string, opts ...Option) (PartitionedHealth, error) {
	cfg, err := newPartitionedConfig(client, stream, opts)
	if err != nil {
		return PartitionedHealth{}, err
	}
	return snapshotPartitioned(ctx, client, stream, &cfg)
}

// newPartitionedConfig is newConfig for a partitioned stream: the same
// checks, and no dead-letter key of its own.
func newPartitionedConfig(client redis.UniversalClient, stream string, opts []Option) (config, error) {
	cfg, err := newConfig(client, stream, opts)
	if err != nil {
		return config{}, err
	}
	if cfg.dlqSet {
		return config{}, fmt.Errorf("%w: WithDeadLetterKey on a partitioned stream: each partition has its own dead-letter stream", midstream.ErrInvalidOption)
	}
	cfg.dlqKey = ""
	return cfg, nil
}

func snapshotPartitioned(ctx context.Context, client redis.UniversalClient, stream string, cfg *config) (PartitionedHealth, error) {
	p := PartitionedHealth{Stream: stream, Time: time.Now()}
	keys, err := midstream.StoredPartitions(ctx, client, stream)
	if err != nil {
		return p, fmt.Errorf("health: %w", err)
	}
	if keys == nil {
		return p, fmt.Errorf("health: %q is not a partitioned stream (no layout stored at %q): %w",
			stream, midstream.PartitionLayoutKey(stream), midstream.ErrNoStream)
	}
	p.Partitions = make([]StreamHealth, len(keys))
	errs := make([]error, len(keys))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(partitionWorkers, len(keys)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				one := *cfg
				one.dlqKey = deadletter.Key(keys[i])
				h, err := snapshot(ctx, client, keys[i], &one)
				if errors.Is(err, midstream.ErrNoStream) {
					h.Length, h.LastID, h.EntriesAdded, h.Groups, err = 0, "", 0, nil, nil
				}
				if err != nil {
					err = fmt.Errorf("partition %d of %q: %w", i, stream, err)
				}
				p.Partitions[i], errs[i] = h, err
			}
		}()
	}
	for i := range keys {
		work <- i
	}
	close(work)
	wg.Wait()
	err = errors.Join(errs...)
	if err != nil {
		p.Errors = errs
		for i, e := range errs {
			if e != nil {
				p.Partitions[i] = StreamHealth{Stream: keys[i], Time: p.Time}
			}
		}
	}
	p.Total = aggregate(stream, p.Time, p.Partitions, cfg.noConsumers)
	return p, err
}

// aggregate folds the snapshots of a partitioned stream's partitions into
// one (see PartitionedHealth.Total).
func aggregate(stream string, at time.Time, parts []StreamHealth, noConsumers bool) StreamHealth {
	t := StreamHealth{Stream: stream, Time: at}
	type groupSum struct {
		g         GroupHealth
		seen      int // partitions that have the group
		oldest    midstream.ID
		consumers map[string]int // index in g.Consumers
	}
	var (
		order  []string
		groups = map[string]*groupSum{}
	)
	for _, h := range parts {
		t.Length += h.Length
		t.EntriesAdded += h.EntriesAdded
		t.DeadLetter.Length += h.DeadLetter.Length
		t.Delayed.Size += h.Delayed.Size
		t.Delayed.Overdue += h.Delayed.Overdue
		t.Delayed.OldestOverdueAge = max(t.Delayed.OldestOverdueAge, h.Delayed.OldestOverdueAge)
		for _, g := range h.Groups {
			s, ok := groups[g.Name]
			if !ok {
				s = &groupSum{g: GroupHealth{Name: g.Name, LagKnown: true, EntriesReadKnown: true},
					consumers: map[string]int{}}
				groups[g.Name] = s
				order = append(order, g.Name)
			}
			s.seen++
			a := &s.g
			a.Pending += g.Pending
			a.Lag += g.Lag
			a.LagKnown = a.LagKnown && g.LagKnown
			a.EntriesRead += g.EntriesRead
			a.EntriesReadKnown = a.EntriesReadKnown && g.EntriesReadKnown
			a.ConsumerCount = max(a.ConsumerCount, g.ConsumerCount)
			if g.OldestPendingID != "" {
				if id, err := midstream.ParseID(g.OldestPendingID); err == nil &&
					(a.OldestPendingID == "" || id.Compare(s.oldest) < 0) {
					s.oldest = id
					a.OldestPendingID, a.OldestPendingAge = g.OldestPendingID, g.OldestPendingAge
					a.OldestPendingIdle, a.OldestPendingDeliveries = g.OldestPendingIdle, g.OldestPendingDeliveries
				}
			}
			if noConsumers {
				continue
			}
			if a.Consumers == nil {
				a.Consumers = []ConsumerHealth{}
			}
			for _, c := range g.Consumers {
				j, ok := s.consumers[c.Name]
				if !ok {
					s.consumers[c.Name] = len(a.Consumers)
					a.Consumers = append(a.Consumers, c)
					continue
				}
				m := &a.Consumers[j]
				m.Pending += c.Pending
				m.Idle = min(m.Idle, c.Idle)
				switch {
				case c.Inactive < 0:
				case m.Inactive < 0:
					m.Inactive = c.Inactive
				default:
					m.Inactive = min(m.Inactive, c.Inactive)
				}
			}
		}
	}
	for _, name := range order {
		s := groups[name]
		if s.seen < len(parts) {
			s.g.LagKnown, s.g.EntriesReadKnown = false, false
		}
		if !s.g.LagKnown {
			s.g.Lag = 0
		}
		if !s.g.EntriesReadKnown {
			s.g.EntriesRead = 0
		}
		if !noConsumers {
			s.g.ConsumerCount = int64(len(s.g.Consumers))
		}
		t.Groups = append(t.Groups, s.g)
	}
	return t
}
