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

// moveScript dead-letters one pending entry if its owner is still the given
// consumer (and it is idle long enough): XADD to the dead-letter stream, then
// XACK, atomically.
//
//	KEYS[1] source stream, KEYS[2] dead-letter stream
//	ARGV[1] group, ARGV[2] entry ID, ARGV[3] consumer
//	ARGV[4] minimum idle time in milliseconds (0: any)
//	ARGV[5] 1-based position, among ARGV[6..], of a value to replace with
//	        the server's delivery count (0: none)
//	ARGV[6..] the dead-letter entry's field, value pairs
//
// It returns the dead-letter entry's ID, or nil if the entry is not pending,
// another consumer owns it, or it was idle for less than the minimum.
var moveScript = redis.NewScript(`
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
// When the source and the dead-letter stream share a cluster slot (see Key
// and Atomic), the check, the XADD and the XACK run as one Lua script: the
// entry is dead-lettered exactly once. Otherwise they are separate commands,
// in the order check, XADD, XACK: a crash or a lost connection between XADD
// and XACK leaves the entry pending, so it may be dead-lettered twice, but
// it is never lost; and if another consumer claims it between the check and
// the XACK, both may end up handling it. Entries with more than about 3500
// fields take the separate-commands path too (a script cannot pass more to
// XADD).
//
// Errors: bad requests wrap midstream.ErrInvalidOption (midstream.ErrInvalidID
// for a bad ID); a missing group is Redis's NOGROUP error.
func (q *Queue) Move(ctx context.Context, r MoveRequest) (moved bool, err error) {
	if err := r.validate(); err != nil {
		return false, err
	}
	ctx, span := q.startMove(ctx, &r)
	defer func() { q.endMove(span, moved, err) }()
	args, delivIdx := q.moveFields(r)
	var id string
	if q.atomic && len(args) <= maxScriptArgs {
		id, err = q.moveScripted(ctx, r, args, delivIdx)
	} else {
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
// entry was not moved.
func (q *Queue) moveScripted(ctx context.Context, r MoveRequest, fields []any, delivIdx int) (string, error) {
	argv := make([]any, 0, 5+len(fields))
	argv = append(argv, r.Group, r.ID, r.Consumer, minIdleMs(r.MinIdle), delivIdx)
	argv = append(argv, fields...)
	id, err := moveScript.Run(ctx, q.client, []string{q.source, q.key}, argv...).Text()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return id, err
}

// moveInSteps checks ownership (XPENDING), adds the dead-letter entry (XADD)
// and acknowledges the source entry (XACK), as separate commands.
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
	id, err := q.client.XAdd(ctx, &redis.XAddArgs{Stream: q.key, Values: fields}).Result()
	if err != nil {
		return "", err
	}
	if err := q.client.XAck(ctx, q.source, r.Group, r.ID).Err(); err != nil {
		// The dead-letter entry exists and the source entry is still
		// pending: a later Move adds a second dead-letter entry.
		return "", fmt.Errorf("dead-lettered as %s but not acknowledged: %w", id, err)
	}
	return id, nil
}
