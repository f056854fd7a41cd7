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
// WithHeaders, WithoutCoalescing and WithDurable. Per call: ID and Header. New checks
// them by the rule of every midstream package: a zero value (WithTrim of
// the zero Trim, WithMaxEntrySize(0)) means the default; a negative one,
// one above its Max… bound (MaxEntrySize) and a nil codec, function or
// provider fail with an error wrapping midstream.ErrInvalidOption.
//
// # Durable publish
//
// WithDurable(replicas, timeout) waits after each write until that many
// replicas have it (WAIT), so that a failover cannot lose an entry whose
// Publish returned no error. When fewer confirm in time, the call returns
// the IDs with a *DurabilityError (ErrNotDurable): written to the master,
// not yet safe. Without it, an entry the master acknowledged but had not
// replicated is lost if the master dies and its replica takes over.
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
