// Package health reports the state of a stream and its consumer groups:
// length, each group's consumers, pending entries, oldest pending entry and
// lag, and the length of the dead-letter stream. It is what to watch when
// running consumer groups (a growing lag or pending count, an old pending
// entry, a filling dead-letter stream), for dashboards, tests and tools.
//
//	h, err := health.Snapshot(ctx, rdb, "{orders}")
//	if err != nil {
//		return err // errors.Is(err, midstream.ErrNoStream) for a missing stream
//	}
//	for _, g := range h.Groups {
//		fmt.Printf("%s: lag %d (known %t), pending %d, oldest %s\n",
//			g.Name, g.Lag, g.LagKnown, g.Pending, g.OldestPendingAge)
//	}
//	fmt.Println("dead letters:", h.DeadLetter.Length)
//
// Snapshot needs no OpenTelemetry. Its cost is O(groups + consumers): a
// few XINFO, XPENDING and XLEN commands in two pipelines, never a scan of
// the stream.
//
// # Lag
//
// A group's lag (entries added to the stream and not yet delivered to the
// group) comes from XINFO GROUPS (Redis 7.0 and later). Redis reports it as
// null when it cannot compute it, for example after an entry past the
// group's last-delivered ID was deleted with XDEL; GroupHealth.LagKnown is
// then false, and the lag gauge reports no point rather than a wrong one.
//
// # Metrics
//
// Gauges exports the same values as OpenTelemetry observable gauges
// (midstream.group.lag, midstream.group.pending,
// midstream.group.pending.oldest_age, midstream.group.consumers,
// midstream.stream.length, midstream.deadletter.depth), taking at most one
// snapshot per collection and reusing one younger than a minimum interval
// (one second by default). A consumer.Consumer registers them for its own
// group while it runs.
//
// Options follow the rule of every midstream package: a zero value means
// the default, except WithMinInterval(0), which takes a snapshot at every
// collection; a negative value, one above its bound (MaxMinInterval) or a
// bad name fails with an error wrapping midstream.ErrInvalidOption.
// NewGauges(nil) uses the global MeterProvider.
//
// # Partitioned streams
//
// A partitioned stream (midstream.Partitions, producer.WithPartitions,
// consumer.WithPartitions) is one logical stream over several partition
// streams, each with its own groups (of the same names), dead-letter stream
// and delay set. SnapshotPartitioned reads its stored layout and snapshots
// every partition, a few at a time, and returns them with their total: sums
// of lengths, dead letters, delayed entries, pending entries and lag (known
// only when every partition's is), the oldest pending entry of any
// partition, consumers merged by name (see PartitionedHealth.Total):
//
//	p, err := health.SnapshotPartitioned(ctx, rdb, "orders")
//	if err != nil {
//		return err // errors.Is(err, midstream.ErrNoStream): no layout stored for "orders"
//	}
//	g, _ := p.Group("billing")
//	fmt.Println("pending", g.Pending, "dead letters", p.Total.DeadLetter.Length)
//	for _, part := range p.Partitions {
//		fmt.Println(part.Stream, part.Length, part.DeadLetter.Length)
//	}
//
// Gauges.RegisterPartitioned (RegisterPartitionedGauges) reports the same
// gauges for each partition, under the logical stream's name with the
// partition's index in messaging.destination.partition.id (KeyPartition).
//
// # JSON
//
// StreamHealth and the types in it marshal to a stable JSON form, the one
// the midstream command's --output json and its dashboard print. Field names
// are snake case; durations are whole milliseconds (fields ending in _ms);
// the time is RFC 3339; a value Redis could not tell (lag, entries_read) is
// null; inactive_ms is 0 before Redis 7.2 and -1 for a consumer that never
// read an entry; consumers is null when the snapshot was taken WithoutConsumers:
//
//	{
//	  "stream": "{orders}", "length": 12, "last_id": "1700000000000-0",
//	  "entries_added": 12, "time": "2024-01-01T00:00:00Z",
//	  "dead_letter": {"key": "{orders}:dlq", "length": 1},
//	  "groups": [{
//	    "name": "billing", "consumer_count": 1, "pending": 2,
//	    "oldest_pending_id": "1700000000000-0", "oldest_pending_age_ms": 1500,
//	    "oldest_pending_idle_ms": 900, "oldest_pending_deliveries": 3,
//	    "last_delivered_id": "1700000000005-0", "entries_read": 6, "lag": 6,
//	    "consumers": [{"name": "worker-1", "pending": 2, "idle_ms": 900, "inactive_ms": 900}]
//	  }]
//	}
//
// A PartitionedHealth marshals to {"stream", "time", "total": StreamHealth,
// "partitions": [StreamHealth]}, the total's last_id and dead_letter.key
// being "" (each partition has its own), and "errors": [string or null],
// one per partition, when a partition could not be read (absent when every
// one was). Unmarshalling reads the same form back.
//
// Snapshot and Gauges never close the client they were given.
package health
