// Package producer appends typed values to a Redis stream (XADD).
//
// A Producer[T] encodes each value with a midstream.Codec (by default the
// flat codec for structs, passthrough for map[string]string), checks it
// before sending (reserved field names, maximum entry size, explicit IDs)
// and adds it. PublishBatch sends many values in one pipeline, keeping their
// order and reporting each entry's error.
//
//	type Activity struct {
//		UserID string  `redis:"userId"`
//		Action string  `redis:"action"`
//		Amount float64 `redis:"amount"`
//	}
//
//	p, err := producer.New[Activity](rdb, "activity",
//		producer.WithTrim(producer.Trim{MaxLen: 1_000_000, Approx: true}))
//	if err != nil {
//		return err // a bad option: errors.Is(err, midstream.ErrInvalidOption)
//	}
//	id, err := p.Publish(ctx, Activity{UserID: "123", Action: "purchase", Amount: 9.99})
//
// Concurrent Publish calls are coalesced into pipelines (group commit): a
// call that finds the connection idle goes out at once, calls arriving
// meanwhile go out together next. WithoutCoalescing turns it off.
//
// Options: WithCodec, WithIDFunc (explicit IDs), WithNoMkStream, WithTrim
// (MAXLEN or MINID, exact or approximate, LIMIT), WithMaxEntrySize,
// WithHeaders, WithoutCoalescing, WithDurable, WithIdempotencyKeyFunc,
// WithIdempotencyWindow, WithIdempotentAttempts, WithPartitions and
// WithPartitionKeyFunc. Per call: ID, Header, IdempotencyKey and
// PartitionKey. New checks
// them by the rule of every midstream package: a zero value (WithTrim of
// the zero Trim, WithMaxEntrySize(0)) means the default; a negative one,
// one above its Max… bound (MaxEntrySize) and a nil codec, function or
// provider fail with an error wrapping midstream.ErrInvalidOption.
//
// # Idempotent, delayed and scheduled entries
//
// With an idempotency key (IdempotencyKey per call, WithIdempotencyKeyFunc
// for every call) an entry is added once per key within a window
// (WithIdempotencyWindow, default DefaultIdempotencyWindow): a repeat
// returns the first entry's ID, and Publish retries on its own when an
// attempt's outcome is unknown, so the caller gets exactly one entry.
//
//	id, err := p.Publish(ctx, order, producer.IdempotencyKey(order.ID))
//
// PublishIn and PublishAt keep an entry in a delay set beside the stream
// until it is due by the server's clock; a mover (every consumer.Run of the
// stream by default, or a Scheduler) then appends it to the stream, each
// entry exactly once. Cancel drops an entry that still waits.
//
//	sid, err := p.PublishIn(ctx, reminder, 24*time.Hour)
//	_, err = p.Cancel(ctx, sid)
//
// Trim on add by MaxAge takes its cutoff from the server's clock (TIME,
// sampled once a second), never the local one.
//
// # Durable publish
//
// WithDurable(replicas, timeout) waits after each write until that many
// replicas have it (WAIT), so that a failover cannot lose an entry whose
// Publish returned no error. When fewer confirm in time, the call returns
// the IDs with a *DurabilityError (ErrNotDurable): written to the master,
// not yet safe. Without it, an entry the master acknowledged but had not
// replicated is lost if the master dies and its replica takes over.
// Idempotent publishes wait the same way; PublishAt, PublishIn and the
// mover that appends delayed entries do not wait.
//
// # Partitioned streams
//
// WithPartitions writes one logical stream as several streams in different
// cluster slots (see midstream.Partitions), so that it can outgrow one node:
// entries with the same partition key (PartitionKey, WithPartitionKeyFunc)
// go to the same partition in publish order, others round-robin. Partitions
// lists the partition keys; consumer.WithPartitions reads them all.
//
//	p, err := producer.New[Order](rdb, "orders",
//		producer.WithPartitions(midstream.Partitions{Count: 6}),
//		producer.WithPartitionKeyFunc(func(o Order) string { return o.CustomerID }))
//
// # Tracing and metrics
//
// Publish and PublishBatch create OpenTelemetry spans ("publish <stream>",
// kind producer, with the messaging semantic conventions' attributes) and
// write their context into the entry's reserved fields traceparent and
// tracestate (and baggage), so that the consumer's span continues the trace
// across Redis; entries added are counted as midstream.messages.published.
// WithTracerProvider, WithPropagator and WithMeterProvider choose the
// providers; by default the global ones, including providers the application
// sets after New. Nothing is written into entries until a propagator is set
// (otel.SetTextMapPropagator(propagation.TraceContext{}) or
// WithPropagator). While no provider is set, or a no-op one, publishing does
// no tracing work and allocates nothing for it.
//
// A Producer never closes the client it was given.
package producer
