// Package consumer processes a Redis stream as one member of a consumer
// group: a Consumer reads entries with XREADGROUP, hands each one to a
// Handler, several at a time, and acknowledges it (XACK) when the handler
// succeeds.
//
//	c, err := consumer.New(rdb, "activity", "billing",
//		consumer.HandlerFunc(func(ctx context.Context, m *consumer.Message) error {
//			return process(ctx, m.ID, m.Fields)
//		}))
//	if err != nil {
//		return err // a bad argument or option: errors.Is(err, midstream.ErrInvalidOption)
//	}
//	return c.Run(ctx) // until ctx is cancelled
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
// An entry that does not decode is not passed to the function: the handler
// fails with a *midstream.DecodeError. A T without a default codec makes New
// fail with an error wrapping midstream.ErrUnsupportedType.
//
// # Delivery
//
// A handler that returns nil acknowledges its entry. One that returns an
// error, or panics (the panic is recovered as a *PanicError), leaves the entry
// pending in the group; the failure is logged and counted in Stats.Failed,
// and the reclaim loop delivers the entry again after its retry backoff. Run first
// reads the consumer's own pending entries (XREADGROUP from ID 0, with
// Message.Deliveries from XPENDING), then new ones; handlers of both may
// overlap. A pending entry found deleted or trimmed from the stream is
// acknowledged without a handler call and counted in Stats.Deleted. After a
// failed read of new entries, whose reply may have been lost after Redis
// delivered them, Run reads its own pending entries after the last one it saw
// before reading new ones again (skipping those it already holds). Such a
// reread counts as a delivery on the server: with WithMaxDeliveries(1) an
// entry whose reply was lost is dead-lettered without a handler call.
//
// # Reclaim, retries and dead letters
//
// Every claim interval, each consumer's reclaim loop looks at the group's
// pending entries (XPENDING with IDLE) and takes over, with XCLAIM, those
// idle for longer than their retry backoff: the minimum idle time for an
// entry delivered once, doubled for each further delivery, capped
// (WithMinIdle, WithClaimInterval, WithRetryBackoff). That redelivers the
// entries whose handler failed, those of consumers that crashed or hang, and
// those whose XREADGROUP reply was lost. The claim is one script per pass
// that re-checks each entry's idle time, so an entry another consumer just
// took or extended is left alone; an entry deleted or trimmed while pending
// is acknowledged instead and counted in Stats.Deleted. Message.Deliveries is
// always the server's count.
//
// An entry delivered WithMaxDeliveries times without success moves to the
// dead-letter stream (package deadletter; by default deadletter.Key of the
// stream, in the same Redis Cluster slot) with its fields and provenance:
// at once when its last handler call fails, or from the reclaim loop when its
// owner died during that call. A permanent error (ErrPermanent, Permanent, a
// *midstream.DecodeError) and an entry larger than WithMaxEntrySize move it
// on the first delivery. The move is one script (XADD to the dead-letter
// stream and XACK) that first checks the entry is still pending for the
// consumer that failed it, so a late failure of a consumer that lost the
// entry to another never dead-letters an entry the other handled.
//
// Entries in flight (running, or read and waiting for a worker) have their
// lease extended every third of the minimum idle time (XCLAIM to the same
// consumer with JUSTID, only while it still owns them), so no reclaim loop
// takes work in progress; Message.ExtendLease extends one explicitly.
//
// The reclaim loop also deletes the group's consumers idle for longer than
// WithConsumerCleanup that own no pending entries, checking that in the
// same script as the deletion: a consumer that owns pending entries is never
// deleted.
//
// Acknowledgements are coalesced, many IDs per XACK: they are sent once the
// ack batch is waiting or the ack interval after the first one waited,
// whichever comes first, and at shutdown. An XACK that fails is retried; an
// entry whose acknowledgement never reaches Redis stays pending and is
// delivered again. Delivery is therefore at least once: make handlers
// idempotent. They are called concurrently, for different entries.
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
//   - WithStart: where a group the consumer creates starts: StartNew (the
//     default), StartBeginning or an entry ID. An existing group is left as
//     it is.
//   - WithConcurrency: handlers running at once, DefaultConcurrency, at most
//     MaxConcurrency.
//   - WithBatchSize: entries asked for per XREADGROUP (COUNT),
//     DefaultBatchSize, at most MaxBatchSize.
//   - WithMaxInFlight: entries read but not yet handled; reading waits at the
//     bound. Default: twice the batch size, or the concurrency if larger; at
//     least the concurrency, at most MaxInFlight.
//   - WithBlock: how long an XREADGROUP waits for new entries, DefaultBlock;
//     from 1ms to MaxBlock.
//   - WithHandlerTimeout: cancels each handler's ctx after a time. Default:
//     none.
//   - WithShutdownTimeout: the grace period of a shutdown,
//     DefaultShutdownTimeout.
//   - WithAcks: the ack batch and interval, DefaultAckBatch and
//     DefaultAckInterval, at most MaxAckBatch and MaxAckInterval.
//   - WithMinIdle, WithClaimInterval, WithRetryBackoff: when idle entries
//     are delivered again, DefaultMinIdle, DefaultClaimInterval and
//     DefaultMaxRetryBackoff; from 1ms to MaxMinIdle, MaxClaimInterval and
//     MaxRetryBackoff.
//   - WithMaxDeliveries: deliveries before the dead-letter stream,
//     DefaultMaxDeliveries, at most MaxDeliveries. WithMaxEntrySize: larger
//     entries are dead-lettered unhandled, DefaultMaxEntrySize, at most
//     MaxEntrySize. WithDeadLetter: the dead-letter queue.
//   - WithConsumerCleanup, WithoutConsumerCleanup: deleting idle consumers
//     that own nothing, after DefaultConsumerIdleTime (at least 1s).
//   - WithLogger: a *slog.Logger. Default: silent.
//   - WithMiddleware: wraps the handler, as Chain does; the first is the
//     outermost.
//   - WithTracerProvider, WithPropagator, WithMeterProvider: OpenTelemetry
//     providers. Default: the global ones.
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
// acknowledgements are flushed, and Run returns nil.
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
// Run returns only when ctx is cancelled (nil), or with the error when
// creating the group fails in a way retrying cannot fix: the key holds
// another type (WRONGTYPE), or the user may not run the command (NOPERM,
// NOAUTH, WRONGPASS). Such errors met later, while reading, are logged and
// retried. Run returns ErrRunning if the Consumer is already running; once
// it has returned, it may run again.
//
// A Consumer never closes the client it was given; close it after Run
// returns. Its ReadTimeout need not exceed the block time: go-redis raises
// the timeout of each blocking XREADGROUP above it.
package consumer
