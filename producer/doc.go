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
// WithHeaders and WithoutCoalescing. Per call: ID and Header.
//
// A Producer never closes the client it was given.
package producer
