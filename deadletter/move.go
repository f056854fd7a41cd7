package deadletter

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/keys"
)

// MoveRequest describes an entry of the source stream to dead-letter.
type MoveRequest struct {
	// ID is the entry's ID in the source stream. Required.
	ID string
	// Fields are the entry's fields, as read: every one is copied into the
	// dead-letter entry (trace context and headers included) except fields
	// with the provenance prefix, which Move writes itself. May be empty
	// (an entry deleted while pending has no fields left).
	Fields map[string]string
	// Group is the consumer group the entry is pending in. Required.
	Group string
	// Consumer is the consumer that owns the entry; Move does nothing if
	// another consumer owns it now. Required.
	Consumer string
	// Deliveries is how many times the entry was delivered. Zero means
	// unknown: Move records the server's delivery count instead.
	Deliveries int64
	// Reason says why the entry is dead-lettered (FieldError). Optional.
	Reason string
	// MinIdle, when positive, moves the entry only if it has been idle at
	// least this long (XPENDING's idle time): an entry its owner touched
	// meanwhile (a lease extension, a re-claim) is left alone. For moving
	// entries a reclaim loop finds past the delivery limit while their
	// owner may still be at work. Milliseconds count; less is rounded up.
	MinIdle time.Duration
}

func (r *MoveRequest) validate() error {
	var err error
	switch {
	case r.ID == "":
		err = errors.New("empty ID")
	case r.Deliveries < 0:
		err = fmt.Errorf("deliveries %d < 0", r.Deliveries)
	case r.MinIdle < 0:
		err = fmt.Errorf("min idle %v < 0", r.MinIdle)
	}
	if err != nil {
		return fmt.Errorf("%w: move: %w", midstream.ErrInvalidOption, err)
	}
	if err := errors.Join(midstream.CheckName("move: group", r.Group), midstream.CheckName("move: consumer", r.Consumer)); err != nil {
		return err
	}
	id, err := normID(r.ID)
	if err != nil {
		return fmt.Errorf("%w: move: %w", midstream.ErrInvalidOption, err)
	}
	r.ID = id
	return nil
}

// maxScriptArgs bounds the fields passed to XADD inside a script: Lua's
// unpack fails past about 8000 values (its C stack limit), so larger entries
// take the multi-command path.
const maxScriptArgs = 7000

// MarkerTTL is how long the multi-command path of Move keeps the marker of
// an entry it dead-lettered (see Move): a repeat of the move within it adds
// no second dead-letter entry.
const MarkerTTL = 24 * time.Hour

// maxWatchAttempts bounds the optimistic transactions of the multi-command
// path for large entries when the dead-letter stream keeps changing.
const maxWatchAttempts = 16

// moveScript dead-letters one pending entry if its owner is still the given
// consumer (and it is idle long enough): XADD to the dead-letter stream, then
// XACK, atomically.
//
//	KEYS[1] source stream, KEYS[2] dead-letter stream
//	ARGV[1] group, ARGV[2] entry ID, ARGV[3] consumer
//	ARGV[4] minimum idle time in milliseconds (0: any)
//	ARGV[5] 1-based position, among ARGV[6..], of a value to replace with
//	        the server's delivery count (0: none)
//	ARGV[6..] the dead-letter entry's field, value pairs (the provenance
//	        makes at least 14 values)
//
// It returns the dead-letter entry's ID; nil if the entry is not pending,
// another consumer owns it, or it was idle for less than the minimum; 0,
// having read and written nothing, when the server cannot check ACLs
// (before Redis 7.0): the caller then takes the multi-command path, whose
// marker keeps a refused XACK from adding a copy per attempt.
//
// Lua is not rolled back: once XADD has run, XACK must not fail. Nothing can
// make it, as far as Redis 7.0's rules go:
//   - permissions (NOPERM): checked with acl_check_cmd for both writes before
//     the first one; ACL rules cannot change while a script runs;
//   - memory (OOM): XADD is the first write and is denyoom, so it fails
//     before anything is written; XACK is not denyoom, and a script that has
//     written is not refused for memory anyway;
//   - read-only replica (READONLY) and disk errors (MISCONF): refused at the
//     first write (XADD), never after a script has written;
//   - WRONGTYPE, NOGROUP, a bad ID: XPENDING has just read this group on this
//     stream and returned this ID;
//   - cluster (CROSSSLOT, MOVED): both keys are KEYS of one slot (Move takes
//     this path only then);
//   - a slow script: SCRIPT KILL refuses a script that has written.
var moveScript = redis.NewScript(aclLua + `
if not has_acl_check then
	return 0
end
local e = denied('XADD', KEYS[2], '*', ARGV[6], ARGV[7]) or denied('XACK', KEYS[1], ARGV[1], ARGV[2])
if e then
	return e
end
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 or p[1][1] ~= ARGV[2] or p[1][2] ~= ARGV[3] or p[1][3] < tonumber(ARGV[4]) then
	return false
end
local a = {}
for i = 6, #ARGV do
	a[#a + 1] = ARGV[i]
end
local d = tonumber(ARGV[5])
if d > 0 then
	a[d] = tostring(p[1][4])
end
local id = redis.call('XADD', KEYS[2], '*', unpack(a))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return id
`)

// markScript is the write of the multi-command path: it adds the
// dead-letter entry and its marker together, unless the marker exists. It
// runs in the dead-letter stream's slot; XACK follows as its own command.
//
//	KEYS[1] dead-letter stream, KEYS[2] marker
//	ARGV[1] source stream, ARGV[2] group, ARGV[3] entry ID (checked for
//	        XACK only: another slot's keys are not touched)
//	ARGV[4] marker TTL in milliseconds
//	ARGV[5..] the dead-letter entry's field, value pairs (the provenance
//	        makes at least 14 values)
//
// It returns {dead-letter ID, 1} when it added the entry, {ID held by the
// marker, 0} when the marker existed (an earlier attempt added the entry).
// SET cannot fail after XADD: permissions are checked first, the marker's
// type by GET before any write, and memory only at the first write.
var markScript = redis.NewScript(aclLua + `
local e = denied('XADD', KEYS[1], '*', ARGV[5], ARGV[6]) or
	denied('SET', KEYS[2], '0-1', 'PX', ARGV[4]) or
	denied('XACK', ARGV[1], ARGV[2], ARGV[3])
` + addOnceLua(4, 5))

// addOnceLua returns the end of a script that adds an entry to KEYS[1]
// together with its marker KEYS[2], unless the marker exists, after the
// permission checks that set e: ARGV[ttl] is the marker's TTL in
// milliseconds, ARGV[fields..] the entry's field, value pairs. It returns
// {new ID, 1}, or {ID held by the marker, 0}.
func addOnceLua(ttl, fields int) string {
	return fmt.Sprintf(`
if e then
	return e
end
local prev = redis.call('GET', KEYS[2])
if prev then
	return {prev, 0}
end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, %[2]d))
redis.call('SET', KEYS[2], id, 'PX', ARGV[%[1]d])
return {id, 1}
`, ttl, fields)
}

// Move dead-letters one entry of the source stream that is pending in
// r.Group and owned by r.Consumer: it adds an entry to the dead-letter stream
// holding the original fields and the provenance (FieldStream … FieldTime),
// then acknowledges the source entry (XACK). The source entry itself is not
// deleted.
//
// moved is false, with a nil error, when the entry is no longer pending in
// the group (already acknowledged or dead-lettered), another consumer owns
// it now (it was reclaimed), or it was idle for less than r.MinIdle: nothing
// is written then. That makes Move safe to repeat and to race with the
// reclaim loop.
//
// Before writing anything, Move checks that the user may run every command
// it will write with (Redis 7.0 and later: redis.acl_check_cmd); if not it
// writes nothing and returns a NOPERM error (redis.HasErrorPrefix(err,
// "NOPERM")), so a user without XACK gets no dead-letter entry per attempt.
//
// When the source and the dead-letter stream share a cluster slot (see Key
// and Atomic), on Redis 7.0 and later, and for entries of up to about 3500
// fields, the check, the XADD and the XACK run as one Lua script: the entry
// is dead-lettered exactly once, or not at all.
//
// Otherwise (another slot, a larger entry, or a server before 7.0) Move
// checks ownership (XPENDING), then, in one step on the dead-letter stream's
// slot, adds the dead-letter entry together with a marker key for the
// source entry, unless that marker exists, and finally acknowledges (XACK).
// The marker is named after the dead-letter key (wrapped in braces when it
// has no hash tag, to share its slot), ":moved:", then the source, group and
// entry ID; it holds the dead-letter entry's ID ("unknown" if the reply to
// the transaction for a large entry, below, was lost) and expires after
// MarkerTTL.
// A repeat of the move after a crash, a lost reply or a failed XACK finds
// the marker and adds no second entry, only the XACK: the entry is never
// lost, and dead-lettered at most once within MarkerTTL (a repeat later
// than that, of a move whose XACK never succeeded, adds a second entry).
// The markers are strings that expire by themselves, one per entry moved on
// this path. If another consumer claims the entry between the check and the
// XACK, both may end up handling it. Entries of more than about 3500 fields
// take the add-with-marker step as a MULTI/EXEC transaction watching the
// marker and the dead-letter stream (a script cannot pass that many to
// XADD), retried a few times when the dead-letter stream changes meanwhile.
//
// Errors: bad requests wrap midstream.ErrInvalidOption (midstream.ErrInvalidID
// for a bad ID); Redis errors are wrapped (errors.As finds the redis.Error),
// e.g. NOGROUP for a missing group.
func (q *Queue) Move(ctx context.Context, r MoveRequest) (moved bool, err error) {
	if err := r.validate(); err != nil {
		return false, err
	}
	ctx, span := q.startMove(ctx, &r)
	defer func() { q.endMove(span, moved, err) }()
	args, delivIdx := q.moveFields(r)
	var id string
	steps := !q.atomic || len(args) > maxScriptArgs
	if !steps {
		id, steps, err = q.moveScripted(ctx, r, args, delivIdx)
	}
	if err == nil && steps {
		id, err = q.moveInSteps(ctx, r, args, delivIdx)
	}
	if err != nil {
		return false, fmt.Errorf("deadletter: move %s: %w", r.ID, err)
	}
	if id == "" {
		q.log.DebugContext(ctx, "deadletter: not moved: no longer pending for the consumer",
			"group", r.Group, "consumer", r.Consumer, "id", r.ID)
		return false, nil
	}
	q.log.DebugContext(ctx, "deadletter: moved", "group", r.Group, "consumer", r.Consumer, "id", r.ID, "dlq_id", id)
	return true, nil
}

// moveFields returns the dead-letter entry's field, value pairs: the original
// fields in name order, then the provenance. delivIdx is the 1-based position
// of the deliveries value when it must come from the server, or 0.
func (q *Queue) moveFields(r MoveRequest) (args []any, delivIdx int) {
	names := make([]string, 0, len(r.Fields))
	for k := range maps.Keys(r.Fields) {
		if !strings.HasPrefix(k, midstream.DeadLetterPrefix) {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	args = make([]any, 0, 2*len(names)+14)
	for _, k := range names {
		args = append(args, k, r.Fields[k])
	}
	args = append(args,
		FieldStream, q.source,
		FieldGroup, r.Group,
		FieldConsumer, r.Consumer,
		FieldID, r.ID,
		FieldDeliveries, strconv.FormatInt(r.Deliveries, 10),
	)
	if r.Deliveries == 0 {
		delivIdx = len(args)
	}
	args = append(args,
		FieldError, r.Reason,
		FieldTime, strconv.FormatInt(time.Now().UnixMilli(), 10),
	)
	return args, delivIdx
}

// minIdleMs returns d in milliseconds, rounded up.
func minIdleMs(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// moveScripted runs moveScript; it returns the dead-letter ID, or "" if the
// entry was not moved. steps is true, with nothing done, when the server
// cannot check ACLs in a script, so the caller must take the steps.
func (q *Queue) moveScripted(ctx context.Context, r MoveRequest, fields []any, delivIdx int) (id string, steps bool, err error) {
	argv := make([]any, 0, 5+len(fields))
	argv = append(argv, r.Group, r.ID, r.Consumer, minIdleMs(r.MinIdle), delivIdx)
	argv = append(argv, fields...)
	v, err := moveScript.Run(ctx, q.client, []string{q.source, q.key}, argv...).Result()
	switch v := v.(type) {
	case string:
		return v, false, nil
	case int64:
		return "", true, nil
	}
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err == nil {
		err = fmt.Errorf("unexpected script reply %T", v)
	}
	return "", false, err
}

// moveInSteps checks ownership (XPENDING), adds the dead-letter entry with
// its marker unless the marker exists (markScript, or addMarkedTx for large
// entries) and acknowledges the source entry (XACK).
func (q *Queue) moveInSteps(ctx context.Context, r MoveRequest, fields []any, delivIdx int) (string, error) {
	pending, err := q.client.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: q.source, Group: r.Group, Start: r.ID, End: r.ID, Count: 1,
	}).Result()
	if err != nil {
		return "", err
	}
	if len(pending) == 0 || pending[0].ID != r.ID || pending[0].Consumer != r.Consumer ||
		pending[0].Idle.Milliseconds() < minIdleMs(r.MinIdle) {
		return "", nil
	}
	if delivIdx > 0 {
		fields[delivIdx-1] = strconv.FormatInt(pending[0].RetryCount, 10)
	}
	marker := q.markerKey(r.Group, r.ID)
	var id string
	var added bool
	if len(fields) <= maxScriptArgs {
		id, added, err = q.addMarked(ctx, marker, r, fields)
	} else {
		id, added, err = q.addMarkedTx(ctx, marker, r, fields)
	}
	if err != nil {
		return "", err
	}
	if !added {
		q.log.DebugContext(ctx, "deadletter: already dead-lettered by an earlier attempt: acknowledging only",
			"group", r.Group, "id", r.ID, "dlq_id", id, "marker", marker)
	}
	n, err := q.client.XAck(ctx, q.source, r.Group, r.ID).Result()
	if err != nil {
		// The dead-letter entry and its marker exist and the source entry
		// is still pending: a repeat finds the marker and only acknowledges.
		return "", fmt.Errorf("dead-lettered as %s but not acknowledged: %w", id, err)
	}
	if n == 0 && !added {
		// A concurrent Move of the same entry added the dead-letter entry
		// and acknowledged it first.
		return "", nil
	}
	return id, nil
}

// addMarked runs markScript: it returns the dead-letter ID, and whether this
// call added the entry (false: the marker existed).
func (q *Queue) addMarked(ctx context.Context, marker string, r MoveRequest, fields []any) (id string, added bool, err error) {
	argv := make([]any, 0, 4+len(fields))
	argv = append(argv, q.source, r.Group, r.ID, MarkerTTL.Milliseconds())
	argv = append(argv, fields...)
	v, err := markScript.Run(ctx, q.client, []string{q.key, marker}, argv...).Slice()
	if err != nil {
		return "", false, err
	}
	if len(v) == 2 {
		id, _ = v[0].(string)
		flag, _ := v[1].(int64)
		if id != "" {
			return id, flag == 1, nil
		}
	}
	return "", false, fmt.Errorf("unexpected script reply %v", v)
}

// markerUnknownID is what a marker holds until addMarkedTx has stored the
// dead-letter ID in it (a transaction cannot use XADD's reply).
const markerUnknownID = "unknown"

// addMarkedTx is addMarked for entries too large for a script: it checks
// permissions (aclScript), then, watching the marker and the dead-letter
// stream, reads the marker and, if it is missing, runs XADD and SET of the
// marker in one MULTI/EXEC. A transaction goes on past a failed command, so
// XADD must not fail inside it: XLEN first fails on a key of another type,
// and the watch aborts EXEC if the key changes after that. Permissions and
// memory are checked when commands are queued and at EXEC, before anything
// runs.
func (q *Queue) addMarkedTx(ctx context.Context, marker string, r MoveRequest, fields []any) (id string, added bool, err error) {
	ttl := strconv.FormatInt(MarkerTTL.Milliseconds(), 10)
	if err := checkACL(ctx, q.client, marker,
		[]any{"XADD", q.key, "*", fields[0], fields[1]},
		[]any{"SET", marker, "0-1", "PX", ttl},
		[]any{"XACK", q.source, r.Group, r.ID},
	); err != nil {
		return "", false, err
	}
	for range maxWatchAttempts {
		err = q.client.Watch(ctx, func(tx *redis.Tx) error {
			prev, err := tx.Get(ctx, marker).Result()
			if err == nil {
				id = prev
				return nil
			}
			if !errors.Is(err, redis.Nil) {
				return err
			}
			if err := tx.XLen(ctx, q.key).Err(); err != nil {
				return err
			}
			var add *redis.StringCmd
			if _, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				add = p.XAdd(ctx, &redis.XAddArgs{Stream: q.key, Values: fields})
				p.Set(ctx, marker, markerUnknownID, MarkerTTL)
				return nil
			}); err != nil {
				return err
			}
			id, added = add.Val(), true
			return nil
		}, marker, q.key)
		if !errors.Is(err, redis.TxFailedErr) {
			break
		}
	}
	if err != nil {
		return "", false, err
	}
	if added {
		// Best effort: a marker left at markerUnknownID works the same.
		if err := q.client.SetArgs(ctx, marker, id, redis.SetArgs{Mode: "XX", KeepTTL: true}).Err(); err != nil {
			q.log.DebugContext(ctx, "deadletter: marker keeps no dead-letter ID", "marker", marker, "error", err)
		}
	}
	return id, added, nil
}

// markerKey returns the marker of entry id of the source stream in group: a
// key in the dead-letter stream's slot whose name holds the source, the
// group and the ID unambiguously (lengths first).
func (q *Queue) markerKey(group, id string) string {
	return q.markers + strconv.Itoa(len(q.source)) + ":" + q.source + ":" +
		strconv.Itoa(len(group)) + ":" + group + ":" + id
}

// markerPrefix returns the start of the marker keys of the dead-letter
// stream dlq, in dlq's cluster slot: dlq+":moved:" when dlq has a hash tag,
// "{"+dlq+"}:moved:" when that hashes alike (no tag: dlq is hashed whole),
// else a tag found in dlq's slot, then dlq and ":moved:".
func markerPrefix(dlq string) string { return slotPrefix(dlq, ":moved:") }

// slotPrefix returns key+suffix when that is in key's cluster slot, else a
// name in key's slot that starts with a hash tag and holds key and suffix.
func slotPrefix(key, suffix string) string {
	if _, ok := keys.HashTag(key); ok {
		return key + suffix
	}
	if k := "{" + key + "}"; keys.SameSlot(k, key) {
		return k + suffix
	}
	return keys.TagInSlot(keys.Slot(key)) + ":" + key + suffix
}
