// Package deadletter keeps a dead-letter stream (DLQ) beside a source stream:
// entries a consumer group cannot process go there with their provenance, to
// be inspected, sent back (redriven) or deleted.
//
//	q, err := deadletter.New(rdb, "{orders}") // DLQ "{orders}:dlq"
//	if err != nil {
//		return err // a bad option: errors.Is(err, midstream.ErrInvalidOption)
//	}
//	// In a consumer, for an entry that failed for good:
//	moved, err := q.Move(ctx, deadletter.MoveRequest{
//		ID: msg.ID, Fields: msg.Fields, Group: "billing", Consumer: "worker-1",
//		Deliveries: 5, Reason: err.Error(),
//	})
//	// Later, by an operator:
//	entries, next, err := q.List(ctx, deadletter.ListOptions{ErrorContains: "timeout"})
//	res, err := q.Redrive(ctx, deadletter.RedriveOptions{ErrorContains: "timeout", Rate: 100})
//
// The consumer package calls Move for entries past their delivery limit or
// failing with a permanent error; most programs only list and redrive.
//
// Options and the fields of ListOptions and RedriveOptions follow the rule
// of every midstream package: a zero value means the default (WithKey("")
// is Key(source), a zero Limit DefaultListLimit, a zero Rate or Max no
// limit); a negative value, NaN, infinity or one above its Max… bound
// (MaxListLimit, MaxScanBudget) and a nil logger or provider fail with an
// error wrapping midstream.ErrInvalidOption. Group and consumer names are
// checked like stream names (midstream.CheckName).
//
// # Entry format
//
// A dead-letter entry is a plain stream entry holding every field of the
// original entry (trace context and headers included) and the provenance
// fields FieldStream, FieldGroup, FieldConsumer, FieldID, FieldDeliveries,
// FieldError and FieldTime, whose names start with "dlq:"
// (midstream.DeadLetterPrefix), a prefix user fields may not use. Any client
// can read it; ParseEntry splits it into an Entry.
//
// # Keys and Redis Cluster
//
// Move writes to the DLQ and acknowledges in the source; Redrive writes to
// the source and deletes from the DLQ. Each runs as one Lua script (for
// entries of up to about 3,500 fields, the most a script can write), exactly
// once, when both keys live in the same Redis Cluster hash slot, which on a
// cluster means the same hash tag. The default key (see Key) takes care of
// it: "orders" gets "{orders}:dlq" and "{orders}" gets "{orders}:dlq". A key
// set with WithKey in another slot still works, with separate commands that
// may duplicate an entry after a crash but never lose one (Queue.Atomic
// tells which path a Queue takes).
//
// # Tracing
//
// Move and Redrive create OpenTelemetry spans ("dead_letter <source>" and
// "redrive <dead-letter key>"); a move made while handling a message is a
// child of that message's span. WithTracerProvider sets the provider;
// the default is the global one, and nothing is traced, at no cost, while
// none is set.
//
// A Queue never closes the client it was given.
package deadletter
