// Package trim bounds Redis streams by length and age without deleting
// entries a consumer group still needs.
//
// A Policy says what to keep: at most MaxLen entries, none older than
// MaxAge, or both (an entry stays only while it is within both bounds).
// Trim runs one pass over one stream; a Trimmer runs passes in the
// background over a set of streams, named or found by pattern:
//
//	policy := trim.Policy{MaxLen: 1_000_000, MaxAge: 7 * 24 * time.Hour, Approx: true}
//
//	res, err := trim.Trim(ctx, rdb, "activity", policy) // one pass
//	if err != nil {
//		return err // a bad policy: errors.Is(err, midstream.ErrInvalidOption)
//	}
//	for _, h := range res.HeldBackBy {
//		log.Printf("group %s still needs %s (%s)", h.Group, h.Until, h.Reason)
//	}
//
//	res, err = trim.Preview(ctx, rdb, "activity", policy) // what a pass would do now, trimming nothing
//
//	t, err := trim.New(rdb, policy, trim.WithPattern("activity:*"), trim.WithInterval(10*time.Second))
//	if err != nil {
//		return err
//	}
//	return t.Run(ctx) // until ctx is cancelled
//
// # Safe by default
//
// Trimming with MAXLEN or MINID alone, as the article does, deletes entries
// whatever the consumer groups have done with them: a group that lags
// behind never sees the entries trimmed before it read them, and entries it
// holds pending vanish under its consumers. A pass here never trims past
// the oldest entry any group still needs. For each group, that is the
// lower of
//
//   - its oldest pending entry (XPENDING summary): delivered, not yet
//     acknowledged; and
//   - the first entry after its last-delivered-id (XINFO GROUPS): not yet
//     delivered. A group at 0-0, just created from the start of the stream,
//     needs every entry.
//
// The pass deletes (XTRIM MINID) the entries below the lower of the
// policy's cutoff and every group's need. It computes both and trims in one
// Lua script, so it costs a few commands whatever the stream's size
// (XLEN, XINFO GROUPS, one XPENDING summary per group, and at most two
// XRANGEs of at most Limit+1 entries) and nothing can slip in between:
// an entry added, delivered or acknowledged meanwhile is seen either
// before the whole pass or after it. A stream without groups is trimmed to
// the policy. Result says what the pass trimmed, what it kept for which
// group (HeldBackBy, with the entry each needs and whether it is pending or
// undelivered), and HeldBack counts the entries kept.
//
// What a group does not protect: entries are protected only while the
// group exists. A group created later, from 0 or from any ID, protects the
// entries still in the stream from then on, not those trimmed before. A
// group that is deleted and recreated (the consumer package recreates a
// deleted group) leaves the entries unprotected in between. A group that
// is never read again holds entries back forever: its lag grows with the
// stream; delete groups nobody consumes.
//
// Policy.Unsafe turns the protection off: passes trim to the policy alone,
// like XTRIM. It may delete entries a group has not read (never delivered
// to it) or holds pending (its consumers find them deleted: the consumer
// package acknowledges them without calling the handler and counts them in
// Stats.Deleted). Result.Lost counts those entries.
//
// # Exact, approximate, and the work limit
//
// An exact pass deletes every entry below the cutoff. An approximate pass
// (Policy.Approx, XTRIM MINID ~) deletes only whole internal nodes
// (listpacks of up to stream-node-max-entries entries, 100 by default, and
// stream-node-max-bytes bytes): it never deletes an entry an exact pass
// would keep, so it is as safe, and keeps at most stream-node-max-entries − 1
// more entries than an exact pass. Here it saves little: Redis frees whole
// nodes in both modes (an exact pass edits only the node straddling the
// cutoff), and both read the same entries first (see below).
//
// Policy.Limit (DefaultLimit when 0) caps the entries one pass deletes, in
// both modes. It also bounds the time one pass holds Redis: to find its
// cutoff and count what it holds back, a pass reads the entries below the
// policy's cutoff (for the length bound, the oldest entries beyond it), at
// most Limit+1 of them. Reading is the main cost of a pass: measured on
// Redis 7.0 with three-field entries, about 1.4µs per entry (1.4ms for a
// pass reading 1000), against 0.8µs to execute the XADD that added the
// entry, while a bare XTRIM frees whole nodes in microseconds. A pass held
// back by a lagging group reads up to Limit entries each time. A stream
// further over its bounds than Limit catches up over several passes;
// Result.More says a pass stopped at the limit, and a Trimmer runs up to
// WithMaxPasses passes per stream and tick while that is so.
//
// # Trim on add or a trimmer
//
// The producer package can trim on every add (producer.WithTrim: XADD with
// MAXLEN or MINID). It keeps a stream tightly bounded at no extra round
// trip, but it ignores consumer groups: it deletes unread and pending
// entries of any group that falls behind by more than the bound. It suits
// streams read without groups (XREAD, XRANGE: feeds, logs, caches) or
// whose groups may lose work past the bound.
//
// A Trimmer (or Trim called on a schedule of yours) protects what groups
// still need, at the cost of a pass per stream and interval and of a
// stream that may grow past its bound while a group lags, by as much as
// that group lags: watch group lag and pending counts, and HeldBackBy. The
// two combine: trim on add with a generous bound as a last-resort cap on
// memory, and a Trimmer with the real policy.
//
// On Redis 8.2 and later, XTRIM and XADD also take an ACKED option that
// keeps entries not yet acknowledged by every group. This package does not
// use it yet: its script needs nothing newer than Redis 6.2, the module's
// minimum (CI runs 7.x), and reports which group held back what.
//
// # Partitioned streams
//
// A partitioned stream (midstream.Partitions) is one logical stream over
// several partition streams, each with its own consumer groups (of the same
// names). Retention works per partition: each partition is trimmed as a
// stream of its own, against its own groups, so a pass never trims what a
// group has not read or holds pending in that partition, however far
// behind it is in the others. A Policy's bounds apply per partition
// (MaxLen 1000 keeps about 1000 entries in each partition; divide a bound on
// the logical stream by the partition count).
//
// TrimPartitioned and PreviewPartitioned run one pass (or its preview) on
// every partition and return one Result per partition; WithPartitioned has
// a Trimmer trim every partition, reading the stored layout at the start of
// each cycle over its streams:
//
//	res, err := trim.PreviewPartitioned(ctx, rdb, "orders", policy)
//	for _, r := range res {
//		log.Printf("%s: would trim %d, held back %d", r.Stream, r.Trimmed, r.HeldBack)
//	}
//
//	t, err := trim.New(rdb, policy, trim.WithPartitioned("orders"))
//
// WithStreams with the partitions' keys does the same for a fixed layout,
// and WithPattern("orders:*") finds the default partition keys
// ("orders:{0}", …) but also their dead-letter streams ("orders:{0}:dlq").
// Trim and Preview on a partition's key work as on any stream; on the
// logical name they find no stream and do nothing.
//
// # Trimmer
//
// New takes the policy and options; WithStreams names streams,
// WithPartitioned names partitioned streams, and WithPattern finds streams
// with SCAN ... TYPE stream (on every master of a cluster). Every interval
// (WithInterval, DefaultInterval) plus a random jitter (WithJitter, by
// default DefaultJitterFraction of the interval), a tick visits at most
// WithMaxStreamsPerTick streams (DefaultMaxStreamsPerTick; the next tick
// goes on where it stopped) and runs up to WithMaxPasses
// passes on each (DefaultMaxPasses). WithReport receives every pass's
// Result (or error); Stats has the totals; WithLogger logs at Debug what
// passes trim and hold back and at Warn what fails.
//
// Failures are retried, never in a hot loop: after a tick with a failure
// the next one waits a growing backoff (50ms to 5s, with jitter) on top of
// the interval. A connection error, a closed client or a cluster
// redirection (what a failover looks like) also reloads a cluster client's
// view of the cluster, and the masters to SCAN are listed afresh on every
// tick, so a Trimmer heals after a master dies without a restart. A master
// whose SCAN fails otherwise (down with no replica to take over, frozen) is
// passed over until the next cycle, so the streams of the others are still
// found and trimmed. An error
// retrying cannot fix (a missing ACL permission, also for a command inside
// the trim script; a named key of another type; an unknown command) ends
// Run once it persisted for 5 attempts in a row on one stream or on SCAN:
// Run returns an error wrapping midstream.ErrMisconfigured and the Redis
// error. Otherwise Run returns nil once its ctx is cancelled, with nothing
// it started left running.
//
// Options and Policy follow the rule of every midstream package: a zero
// value means the default (Policy.Limit 0 is DefaultLimit; MaxLen or
// MaxAge 0 is no bound of that kind), except WithJitter(0), which turns
// jitter off; a negative value, or one above its bound (MaxInterval,
// MaxJitter, MaxStreamsPerTick, MaxPasses, MaxLimit, MaxLength), and a nil
// logger, report function or provider fail with an error wrapping
// midstream.ErrInvalidOption.
//
// Neither Trim nor a Trimmer ever closes the client it was given.
package trim
