// Package consumer processes a Redis stream as one member of a consumer
// group: a Consumer reads entries with XREADGROUP, hands each one to a
// Handler, several at a time, and acknowledges it (XACK) when the handler
// succeeds.
//
//	c, err := consumer.New(rdb, "activity", "billing",
//		consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
//			return process(ctx, m.ID, m.Field("order"))
//		}))
//	if err != nil {
//		return err // a bad argument or option: errors.Is(err, midstream.ErrInvalidOption)
//	}
//	return c.Run(ctx) // until ctx is cancelled
//
// A Message reads its fields in place from the reply go-redis parsed:
// Field, Lookup, All, Header and Headers copy nothing; Fields and Entry
// build a new map on each call, for a handler that needs one. Middleware
// cannot change the fields later handlers see (pass values in ctx instead).
//
// Typed decodes each entry into a value first, with midstream.DefaultCodec
// (the flat codec for structs, see midstream.FlatCodec); TypedCodec takes
// any codec:
//
//	type Activity struct {
//		UserID string  `redis:"userId"`
//		Amount float64 `redis:"amount"`
//	}
//
//	h := consumer.Typed(func(ctx context.Context, a Activity, m *consumer.Message) error {
//		return bill(ctx, a.UserID, a.Amount)
//	})
//
// Codecs that implement midstream.SourceDecoder (FlatCodec, JSONCodec)
// decode straight from the reply, without a map of the fields.
//
// An entry that does not decode is not passed to the function: the handler
// fails with a *midstream.DecodeError. A T without a default codec makes New
// fail with an error wrapping midstream.ErrUnsupportedType; if the Typed
// handler is hidden inside a middleware of the caller's, New cannot see it,
// and Run stops at the first delivery with that error wrapped in
// midstream.ErrMisconfigured, leaving the entries pending (no retry, no
// dead letter).
//
// # Delivery
//
// A handler that returns nil acknowledges its entry. One that returns an
// error, or panics (the panic is recovered as a *PanicError), gives the entry
// back for a retry after its retry delay: in one script, it stays pending in
// the group, handed to the group's consumer RetryOwner (XCLAIM … JUSTID,
// keeping its delivery count), and is scheduled in the group's retry
// schedule (RetryKey, a sorted set in the stream's slot, by the server's
// clock). The retry loop of every consumer of the group claims due entries
// from there (a new delivery: the count goes up) and hands them to its
// workers. The delay comes from the retry policy (WithRetryPolicy,
// WithRetryDelay; by default 1s doubling to 5min, with jitter), or from
// the handler (RetryAfter), and is independent of the minimum idle time,
// which only detects consumers that stopped. A handler that exceeds
// WithHandlerTimeout fails with a *TimeoutError saying after how long. The
// failure is logged and counted in Stats.Failed. A pending entry found
// deleted or trimmed from the stream is acknowledged without a handler call
// and counted in Stats.Deleted.
//
// The handler runs exactly WithMaxDeliveries times for an entry that always
// fails (absent crashes), seeing Message.Deliveries 1, 2, …, then the entry
// is dead-lettered with the reason "handler failed N times (limit M): <the
// last error>".
//
// # The ownership ledger
//
// Each running consumer keeps one record of the entries it holds: an entry
// enters when a read of new entries, a claim or the audit returns it, and
// leaves only when Redis has confirmed its XACK or its move to the
// dead-letter stream, or when its handler failed and it was handed to
// RetryOwner (or, when leases find it no longer this consumer's, before a
// worker starts it; or when a shutdown leaves it pending; or after ten
// failed attempts to dead-letter it, see below). Every path consults it, so no entry held by a live consumer
// runs twice in it, whichever path returns it again:
//
//   - claims (the reclaim loop, the audit) skip held entries, and the
//     claim script re-checks each entry's owner and idle time in Redis;
//   - lease extension covers every held entry, running, waiting for a
//     worker, or handled and waiting for its XACK; an entry found taken over
//     by another consumer (its lease ran out, for example during a long
//     outage) is not started;
//   - the in-flight bound (WithMaxInFlight) counts held entries: a consumer
//     whose acknowledgements cannot reach Redis stops reading instead of
//     running more entries, and its memory stays bounded.
//
// Its memory is proportional to the in-flight bound, never to the stream or
// the pending list.
//
// Entries a read delivered but whose reply was lost (a connection cut after
// Redis executed the XREADGROUP, including when go-redis retried the command
// itself and the consumer never saw an error), and entries a predecessor
// under the same name left pending, are found by the audit: when Run starts,
// after a failed read, and every AuditInterval, the consumer lists its own
// pending entries idle for at least AuditIdle (XPENDING with its name) and
// claims those it does not hold, leaving alone the entries delivered by a
// read still under way (however slow its reply). On an idle consumer that is
// one XPENDING a second that returns nothing; on a busy one, one XPENDING of
// up to 1000 entries a second over its own pending entries (the in-flight
// bound while healthy; one more XPENDING per further 1000). The audit's
// claim counts as a delivery, or the handler's start on the entry does
// (see Crash pills): an entry whose read reply was lost counts as
// delivered once already, so with WithMaxDeliveries(1) it is dead-lettered
// without a handler call.
//
// # Crash pills
//
// An entry whose handler takes the process down (os.Exit, an OOM kill, a
// crash in C code) would take its neighbours down with it every time:
// those running beside it, those read and not started, and those handled
// whose acknowledgement was still coalescing. The first time an entry is
// claimed from an owner that stopped (by the reclaim loop, or by the audit
// from a predecessor under the same name), it counts as a new delivery and
// runs beside the others. Claimed again, or when one more delivery would
// reach the limit, it is claimed keeping its delivery count, counted one
// delivery more in Redis only when a handler starts on it, run alone in
// the process (no other handler runs meanwhile), and acknowledged before
// the next handler starts. A crash pill reaches the delivery limit and is
// dead-lettered with the reason "owner crashed or hung while handling it,
// after N deliveries"; with a limit of three or more (the default is five)
// its neighbours are handled again (at least once) and never
// dead-lettered for its crashes. This costs one round trip per entry
// claimed a second time, and entries claimed a second time run one at a
// time.
//
// # Reclaim, retries and dead letters
//
// Every claim interval, each consumer's reclaim loop looks at the group's
// pending entries (XPENDING with IDLE), from where its last pass stopped, and
// takes over, with XCLAIM, those idle for longer than their crash backoff:
// the minimum idle time for an entry delivered once, doubled for each
// further delivery, capped (WithMinIdle, WithClaimInterval,
// WithRetryBackoff). That redelivers the entries of consumers that crashed
// or hang, and entries owned by RetryOwner that are missing from the retry
// schedule (given back by an earlier version of this package). A pass claims as many eligible entries
// as the in-flight bound has room for, in chunks of the batch size, and goes
// on through the pending list while eligible entries remain; while it waits
// for room, reads of new entries leave room for it. An eligible entry it has
// no room for is where the next pass starts: none is skipped. The claim is
// one script per chunk that re-checks each entry's owner and idle time, so an
// entry another consumer just took or extended is left alone. Message.Deliveries is
// always the server's count.
//
// An entry delivered WithMaxDeliveries times without success moves to the
// dead-letter stream (package deadletter; by default deadletter.Key of the
// stream, in the same Redis Cluster slot) with its fields and provenance:
// at once when its last handler call fails, or from the reclaim loop (without
// another delivery) when its owner died during that call. A permanent error
// (ErrPermanent, Permanent, a *midstream.DecodeError) and an entry larger than
// WithMaxEntrySize move it on the first delivery. The move first checks the
// entry is still pending for the consumer that failed it, so a late failure
// of a consumer that lost the entry to another never dead-letters an entry the
// other handled; see deadletter.Queue.Move for what it guarantees. If the move
// fails, the entry stays held (leased, counted in the in-flight bound) and
// the move is tried again with backoff, apart from the acknowledgements; a
// configuration error that persists stops Run (see Errors), and after ten
// failed attempts the entry is left pending for the audit to find again.
//
// Lease extension runs every third of the minimum idle time (XCLAIM to the
// same consumer with JUSTID, only while it still owns the entry) for every
// entry held longer than that; Message.ExtendLease extends one explicitly.
//
// The reclaim loop also deletes the group's consumers idle for longer than
// WithConsumerCleanup that own no pending entries, checking that in the
// same script as the deletion: a consumer that owns pending entries is never
// deleted.
//
// Acknowledgements are coalesced, many IDs per XACK: they are sent once the
// ack batch is waiting or the ack interval after the first one waited,
// whichever comes first, and at shutdown. An XACK that fails is retried,
// and the entry stays held (with its lease) until one succeeds; an entry
// whose acknowledgement never reaches Redis stays pending and is delivered
// again. WithSyncAck makes each worker wait for its entry's XACK to be
// confirmed before it takes the next one; WithOnAck reports confirmed
// acknowledgements. Delivery is at least once: make handlers idempotent.
// They are called concurrently, for different entries.
//
// # Errors
//
// Errors from Redis fall into classes, handled the same way by every path
// (reading, acknowledging, claiming, auditing, extending leases,
// dead-lettering; cleaning up idle consumers and heartbeats are
// housekeeping, whose errors are only logged):
//
//   - transient (LOADING, BUSY, OOM, a pool timeout, anything unknown):
//     retried with backoff and jitter (reads and acknowledgements) or at
//     the path's next interval;
//   - topology (MOVED, ASK, READONLY, CLUSTERDOWN, MASTERDOWN, a refused,
//     lost or timed-out connection, a closed client): the client's view of
//     a cluster is refreshed (ReloadState), then retried as transient;
//   - a missing group or stream (NOGROUP): the read loop recreates it;
//   - configuration (NOPERM, WRONGTYPE, NOAUTH, WRONGPASS, an unknown
//     command): logged and retried with backoff, and when one path meets
//     such an error five times in a row, Run shuts down and returns it
//     wrapped in midstream.ErrMisconfigured.
//
// # Options
//
// Options are checked by New, by the rule every midstream package follows:
// an option given its zero value (0, "") means its default, exactly as if
// it were left out; a negative value, or one outside the option's
// documented range (its Max… constant), fails with an error wrapping
// midstream.ErrInvalidOption, as does a nil handler (a nil HandlerFunc
// included), middleware, logger, provider or dead-letter queue. Nothing is
// sized from a number before it is checked.
//
//   - WithName: the consumer's name in the group, checked like a stream
//     name (midstream.CheckName). Default: host name, process ID and a
//     random suffix, unique per Consumer. A fixed name lets a restarted
//     process finish what its predecessor left pending; two live consumers
//     must never share a name. The group name is checked the same way.
//   - WithStart: where a group the consumer creates starts: StartBeginning
//     (the default, as the article's XGROUP CREATE … 0: entries published
//     before the first Run are handled), StartNew or an entry ID. An
//     existing group is left as it is.
//   - WithConcurrency: handlers running at once, DefaultConcurrency, at most
//     MaxConcurrency.
//   - WithBatchSize: entries asked for per XREADGROUP (COUNT),
//     DefaultBatchSize, at most MaxBatchSize.
//   - WithMaxInFlight: entries held (read or claimed, not yet acknowledged);
//     reading waits at the bound. Default: twice the batch size, or the
//     concurrency if larger; at least the concurrency, at most
//     MaxInFlight.
//   - WithBlock: how long an XREADGROUP waits for new entries, DefaultBlock;
//     from 1ms to MaxBlock.
//   - WithHandlerTimeout: cancels each handler's ctx after a time; the
//     failure is a *TimeoutError. Default: none.
//   - WithRetryPolicy, WithRetryDelay: how long a failed entry waits before
//     its next delivery. Default ExponentialRetry(DefaultRetryDelay,
//     DefaultMaxRetryDelay); at most MaxRetryDelay.
//   - WithShutdownTimeout: the grace period of a shutdown,
//     DefaultShutdownTimeout.
//   - WithAcks: the ack batch and interval, DefaultAckBatch and
//     DefaultAckInterval, at most MaxAckBatch and MaxAckInterval.
//   - WithMinIdle, WithClaimInterval, WithRetryBackoff: when entries of a
//     consumer that stopped are delivered again, DefaultMinIdle, DefaultClaimInterval and
//     DefaultMaxRetryBackoff; from MinMinIdle (10ms) to MaxMinIdle, MaxClaimInterval and
//     MaxRetryBackoff.
//   - WithMaxDeliveries: deliveries before the dead-letter stream,
//     DefaultMaxDeliveries, at most MaxDeliveries. WithMaxEntrySize: larger
//     entries are dead-lettered unhandled, DefaultMaxEntrySize, at most
//     MaxEntrySize. WithDeadLetter: the dead-letter queue.
//   - WithConsumerCleanup, WithoutConsumerCleanup: deleting idle consumers
//     that own nothing, after DefaultConsumerIdleTime (at least 1s).
//   - WithSyncAck: each worker waits for its entry's XACK to be confirmed
//     before it takes the next. WithOnAck: a hook called with the IDs of
//     confirmed acknowledgements.
//   - WithLogger: a *slog.Logger. Default: silent.
//   - WithMiddleware: wraps the handler, as Chain does; the first is the
//     outermost.
//   - WithTracerProvider, WithPropagator, WithMeterProvider: OpenTelemetry
//     providers. Default: the global ones.
//
// # Redriven entries
//
// deadletter.Queue.Redrive sends a dead letter back to its group only, to
// the group's redrive stream (deadletter.RedriveKey). Every Consumer also
// consumes that stream, under the same name and group, with the same
// handler and options (one more blocked XREADGROUP and the background
// passes of a second, mostly idle, consumer); Message.Stream then names
// the redrive stream. Stats include its counts. If it cannot run (a user
// not allowed on that key), that is logged and the consumer goes on with
// the source alone.
//
// A Redis user limited to some keys needs, beside the stream, its
// dead-letter stream (deadletter.Key), the group's retry schedule
// (RetryKey: without it, failed entries cannot be scheduled and Run stops
// with a configuration error), its redrive stream (deadletter.RedriveKey)
// and the heartbeat hash (AliveKey). Unless WithoutScheduler, Run also
// moves the stream's delayed entries: that needs EVAL and EVALSHA and the
// delay set's keys ("{orders}:midstream:delay", "…:delay:data" and
// "…:delay:seq" for stream "orders"); without them the mover logs a warning
// and stops, and Run goes on.
//
// # Partitioned streams
//
// WithPartitions consumes a logical stream written as several partitions
// (see midstream.Partitions and producer.WithPartitions): the consumer is one
// consumer of each partition, in the same group and under the same name,
// each with everything above (ledger, retries, reclaim, the partition's own
// dead letters and redriven entries). Every consumer reads every partition,
// so there is no assignment to rebalance when consumers come and go;
// WithAssignedPartitions splits the partitions statically instead, for
// per-key handling order. Options apply per partition.
//
// # Tracing and metrics
//
// Each handled message gets an OpenTelemetry span "process <stream>" (kind
// consumer) whose parent is the producer's span, read from the entry's
// traceparent field: publish and processing are one trace across Redis.
// The handler's ctx carries the span, so the handler's own spans join the
// trace. Reclaim passes, dead-letter moves and redrives have spans too.
// Counters (processed, failed, retried, reclaimed, dead-lettered,
// deleted-while-pending) are counted where Stats counts; histograms record
// handler duration and end-to-end latency (from the time in the entry's ID);
// midstream.messages.in_flight counts running handlers; and while Run runs,
// the gauges of package health report the group's lag, pending count,
// oldest pending age, consumers and dead-letter depth, read at most once per
// collection and per second, never with work proportional to the stream.
//
// WithTracerProvider, WithPropagator and WithMeterProvider choose the
// providers; by default the global ones, including providers set after New.
// While no provider is set, or a no-op one, handling a message does no
// tracing or metrics work and allocates nothing for it. See
// WithTracerProvider and WithMeterProvider for the span and instrument
// details, and package health for a snapshot without OpenTelemetry.
//
// # Shutdown
//
// Cancelling Run's ctx stops reading once the current XREADGROUP returns
// (within the block time; on a broken connection, within the client's read
// timeout, which go-redis sets 10s above the block time). Handlers in flight and entries already read are
// then given the shutdown timeout to finish, with their ctx still live. When
// it runs out, handlers' ctx is cancelled, entries not started are skipped,
// and a handler that does not return shortly after is abandoned: Run returns
// without waiting for it. Skipped and abandoned entries stay pending. Last,
// acknowledgements are flushed (leases are extended until then), and Run
// returns.
//
// # Resilience
//
// Run creates the group if it does not exist (XGROUP CREATE with MKSTREAM,
// so the stream may not exist yet). Connection errors, timeouts and a Redis
// restart are logged and retried with backoff. A group or stream deleted
// while running (NOGROUP) is recreated: from the start of the stream if the
// stream is gone, else after the last entry this consumer read (or at the
// WithStart position if it read none). Entries pending in the lost group,
// this consumer's included, are not delivered again; entries the new group
// starts after are not delivered either if the stream was recreated with IDs
// below the recreated group's start.
//
// Run returns nil when ctx is cancelled, or an error wrapping
// midstream.ErrMisconfigured when creating the group fails in a way retrying
// cannot fix (WRONGTYPE, NOPERM, NOAUTH, WRONGPASS) or such an error persists
// while running (see Errors). Run returns ErrRunning if the Consumer is
// already running, or if handlers its previous Run abandoned are still
// running (their entries are still pending for it); otherwise, once it has
// returned, it may run again.
//
// A Consumer never closes the client it was given; close it after Run
// returns. Its ReadTimeout need not exceed the block time: go-redis raises
// the timeout of each blocking XREADGROUP above it.
package consumer
