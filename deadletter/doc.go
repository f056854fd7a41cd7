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
//		ID: msg.ID, Fields: msg.Fields(), Group: "billing", Consumer: "worker-1",
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
// the target (by default the group's redrive stream, see below) and deletes
// from the DLQ. Each runs as one Lua script (for
// entries of up to about 3,500 fields, the most a script can write), exactly
// once, when both keys live in the same Redis Cluster hash slot, which on a
// cluster means the same hash tag (and, for Move, on Redis 7.0 and later).
// The default key (see Key) takes care of it: "orders" gets "{orders}:dlq"
// and "{orders}" gets "{orders}:dlq". A key set with WithKey in another slot
// still works, with separate commands that never lose an entry
// (Queue.Atomic tells which path a Queue takes): Move then keeps a
// short-lived marker key per entry in the dead-letter stream's slot, so that
// a repeat after a crash, a lost reply or a failed XACK adds no second
// dead-letter entry within MarkerTTL (larger entries and servers before 7.0
// take this path too); Redrive likewise keeps a marker per dead-letter
// entry in the target's slot, so a repeat adds nothing twice (entries of
// more than about 3,500 fields excepted).
//
// # Redrive to the entry's group
//
// A dead letter records the group it was pending in (FieldGroup), and
// Redrive sends it back to that group only: to the group's redrive stream,
// RedriveKey(source, group) ("{orders}:midstream:redrive:billing"), which
// the group's consumers (package consumer) read beside the source, and no
// other group reads. Re-adding it to the source would have every group
// handle it again, including those that had handled it. Each Redrive also
// trims from that stream the entries the group is done with (delivered and
// acknowledged), never one it still needs. Entries that record no group
// (written by hand or by another tool) go back to the source, and
// RedriveOptions.Target sends every selected entry to a stream of the
// caller's choice (for example the source, for groups whose consumers do
// not read redrive streams).
//
// Dead letters written by earlier versions carry their group already:
// they are redriven to it like new ones. Their group's consumers must run
// a version that reads redrive streams (any Consumer of package consumer
// from this one on) for them to be handled; until then they wait in the
// redrive stream, nothing lost.
//
// # Permissions
//
// Move and Redrive check, before their first write, that the Redis user may
// run every command they write with (on Redis 7.0 and later, which have
// redis.acl_check_cmd). A user without XACK (Move) or XDEL (Redrive) gets a
// NOPERM error and nothing is written: no dead-letter entry, nothing added
// to the target. Before 7.0, Move's marker still keeps such a user to one
// dead-letter entry per source entry; Redrive cannot check.
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
