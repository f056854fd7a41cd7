package trim

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/rediserr"
)

// Reason says why a group holds entries back.
type Reason string

// Reasons a group needs an entry.
const (
	// ReasonPending: the group delivered the entry (or an earlier one) to a
	// consumer that has not acknowledged it yet.
	ReasonPending Reason = "pending"
	// ReasonUndelivered: the group has not delivered the entry to any
	// consumer yet; it comes after the group's last-delivered-id.
	ReasonUndelivered Reason = "undelivered"
)

// HeldBack names a group that kept entries the policy would have trimmed.
type HeldBack struct {
	// Group is the consumer group's name.
	Group string
	// Until is the ID of the oldest entry the group still needs: the pass
	// kept it and everything after it.
	Until string
	// Reason says whether that entry is pending in the group or not yet
	// delivered by it.
	Reason Reason
}

// Result reports one pass over one stream.
type Result struct {
	// Stream is the stream's key.
	Stream string
	// Trimmed is the number of entries the pass deleted.
	Trimmed int64
	// Cutoff is the effective cutoff: the pass deleted entries with lower
	// IDs (in approximate mode, those in whole internal nodes below it) and
	// kept every entry at or above it. It is the lower of PolicyCutoff and
	// what the groups need. "0-0" when the stream is empty or missing.
	Cutoff string
	// PolicyCutoff is where the policy alone would have cut in this pass:
	// the higher of its length and age cutoffs, lowered to the work limit
	// (at most Limit entries are below it).
	PolicyCutoff string
	// HeldBack is the number of entries below PolicyCutoff that the pass
	// kept because a group still needs them: counted within the pass's work
	// limit, so at most Policy.Limit even when a group lags further behind.
	// Always 0 in Unsafe mode.
	HeldBack int64
	// HeldBackBy lists the groups that kept entries the policy would have
	// trimmed, each with the oldest entry it needs, oldest first: the first
	// one set the cutoff. Empty in Unsafe mode.
	HeldBackBy []HeldBack
	// More reports that the pass trimmed entries and stopped at its work
	// limit (Policy.Limit) while the policy asks for more to go now: another
	// pass would trim more.
	More bool
	// Lost is, in Unsafe mode, the number of trimmed entries that a group
	// still needed (pending in it, or not yet delivered by it): that work is
	// lost to the group. Always 0 in safe mode.
	Lost int64
	// Len is the stream's length after the pass.
	Len int64
}

// Trim runs one pass of the policy p over stream, atomically (one Lua
// script): it computes the policy's cutoff, lowers it to the oldest entry
// any consumer group still needs (unless p.Unsafe), and deletes the entries
// below it (XTRIM MINID), at most p.Limit of them. An entry added,
// delivered or acknowledged concurrently is seen either before or after the
// whole pass, never in between, so no entry a group needs is ever trimmed.
//
// A stream without groups is trimmed to the policy; a missing or empty
// stream is left alone. A bad policy or stream name fails with an error
// wrapping midstream.ErrInvalidOption or midstream.ErrInvalidStream; a key
// holding another type fails with Redis's WRONGTYPE error.
//
// The caller keeps ownership of client. On a Redis Cluster, the pass runs on
// the node holding stream; after a connection error or a redirection (a
// failover, say) Trim has the cluster client reload its view of the
// cluster, so that a retry goes to the node that holds stream now.
func Trim(ctx context.Context, client redis.UniversalClient, stream string, p Policy) (Result, error) {
	if err := checkArgs(client, stream, p); err != nil {
		return Result{}, err
	}
	res, err := pass(ctx, client, stream, p, false)
	if err != nil && rediserr.Classify(err) == rediserr.Topology {
		rediserr.Refresh(ctx, client)
	}
	return res, err
}

// Preview computes what Trim(ctx, client, stream, p) would do now, and
// does not trim: Result.Trimmed is how many entries an exact pass would
// delete (an approximate one deletes whole nodes only, so at most that
// many), Result.Len the length it would leave, and Cutoff, PolicyCutoff,
// HeldBack, HeldBackBy, More and Lost are what that pass would report. It
// runs the same script as Trim, in one step, so it sees the stream and its
// groups at one moment; a Trim that follows may see more work acknowledged
// and trim further. Its arguments, errors and cost are Trim's.
func Preview(ctx context.Context, client redis.UniversalClient, stream string, p Policy) (Result, error) {
	if err := checkArgs(client, stream, p); err != nil {
		return Result{}, err
	}
	return pass(ctx, client, stream, p, true)
}

// checkArgs refuses what Trim and Preview refuse.
func checkArgs(client redis.UniversalClient, stream string, p Policy) error {
	if client == nil {
		return fmt.Errorf("%w: nil client", midstream.ErrInvalidOption)
	}
	if err := midstream.CheckStream(stream); err != nil {
		return err
	}
	return p.Validate()
}

// pass runs the script for a validated policy.
func pass(ctx context.Context, client redis.UniversalClient, stream string, p Policy, preview bool) (Result, error) {
	res := Result{Stream: stream}
	argv := []any{
		p.MaxLen,
		p.MaxAge.Milliseconds(),
		flag(p.Approx),
		p.limit(),
		flag(p.Unsafe),
		flag(preview),
	}
	reply, err := trimScript.Run(ctx, client, []string{stream}, argv...).Slice()
	if err != nil {
		return res, fmt.Errorf("trim %s: %w", stream, err)
	}
	if err := parseReply(reply, &res); err != nil {
		return res, fmt.Errorf("trim %s: %w", stream, err)
	}
	return res, nil
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// parseReply fills res from the script's reply (see trimScript).
func parseReply(reply []any, res *Result) error {
	if len(reply) != 8 {
		return fmt.Errorf("unexpected script reply %v", reply)
	}
	ints := [...]struct {
		i   int
		dst *int64
	}{{0, &res.Trimmed}, {3, &res.HeldBack}, {5, &res.Lost}, {6, &res.Len}}
	for _, f := range ints {
		v, err := toInt(reply[f.i])
		if err != nil {
			return err
		}
		*f.dst = v
	}
	more, err := toInt(reply[4])
	if err != nil {
		return err
	}
	res.More = more != 0
	var ok bool
	if res.Cutoff, ok = reply[1].(string); !ok {
		return fmt.Errorf("unexpected cutoff %v", reply[1])
	}
	if res.PolicyCutoff, ok = reply[2].(string); !ok {
		return fmt.Errorf("unexpected policy cutoff %v", reply[2])
	}
	held, ok := reply[7].([]any)
	if !ok || len(held)%3 != 0 {
		return fmt.Errorf("unexpected held-back list %v", reply[7])
	}
	for i := 0; i < len(held); i += 3 {
		g, ok1 := held[i].(string)
		id, ok2 := held[i+1].(string)
		r, ok3 := held[i+2].(string)
		if !ok1 || !ok2 || !ok3 {
			return fmt.Errorf("unexpected held-back entry %v", held[i:i+3])
		}
		res.HeldBackBy = append(res.HeldBackBy, HeldBack{Group: g, Until: id, Reason: Reason(r)})
	}
	slices.SortFunc(res.HeldBackBy, func(a, b HeldBack) int {
		if c := compareIDs(a.Until, b.Until); c != 0 {
			return c
		}
		return strings.Compare(a.Group, b.Group)
	})
	return nil
}

// compareIDs orders two entry IDs; malformed ones (never sent by Redis) sort
// as equal.
func compareIDs(a, b string) int {
	x, err1 := midstream.ParseID(a)
	y, err2 := midstream.ParseID(b)
	if err1 != nil || err2 != nil {
		return 0
	}
	return x.Compare(y)
}

func toInt(v any) (int64, error) {
	switch n := v.(type) {
	case int64:
		return n, nil
	case string: // RESP3 or proxies may hand integers back as text
		return strconv.ParseInt(n, 10, 64)
	}
	return 0, fmt.Errorf("unexpected integer %v (%T)", v, v)
}
