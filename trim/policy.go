package trim

import (
	"fmt"
	"time"

	"github.com/midstream-go/midstream"
)

// DefaultLimit is the most entries one pass evicts when Policy.Limit is 0.
// It bounds how long one pass holds Redis: a pass reads at most Limit+1
// entries and deletes at most Limit.
const DefaultLimit = 1000

// MaxLimit bounds Policy.Limit. A pass reads up to Limit+1 entries inside
// one script, holding Redis meanwhile: about 0.15 s at MaxLimit, by the
// 1.4µs per entry measured on Redis 7.0 (see the package doc). A stream
// further over its bounds catches up over several passes.
const MaxLimit = 100_000

// MaxLength bounds Policy.MaxLen: the trim script counts in Lua numbers,
// exact up to 2^53.
const MaxLength = 1 << 53

// Policy says what to keep in a stream. An entry goes when it is outside
// every bound that is set (MaxLen, MaxAge or both) and, unless Unsafe is
// set, no consumer group still needs it.
//
// Set at least one of MaxLen and MaxAge. With both, an entry is kept only
// while it is within both bounds: the pass uses the higher of the two
// cutoffs.
type Policy struct {
	// MaxLen keeps at most this many entries: the newest ones. Zero means no
	// length bound; at most MaxLength.
	MaxLen int64
	// MaxAge drops entries older than this, by the time in their ID (the
	// millisecond Redis added them), measured on the Redis server's clock
	// (TIME) so that it matches the IDs. Zero means no age bound; it must
	// otherwise be at least a millisecond.
	MaxAge time.Duration
	// Approx trims whole internal nodes only (XTRIM MINID ~): a pass may
	// keep up to stream-node-max-entries − 1 (99 by default) more entries
	// than an exact one would. It never trims more than an exact pass, so it
	// is just as safe. It saves Redis little here (see the package doc).
	Approx bool
	// Limit caps the entries one pass evicts, in exact and approximate mode
	// alike; 0 means DefaultLimit, and it is at most MaxLimit. A pass reads
	// at most Limit+1 entries to find its cutoff, so Limit is also the
	// bound on the work one pass does inside Redis. A stream further over
	// its bounds than Limit is brought back within them over several
	// passes (Result.More says a pass stopped at the limit). With Approx,
	// keep Limit well above the server's stream-node-max-entries (100 by
	// default): an approximate pass deletes only whole nodes within its
	// limit, so below the node size it deletes nothing.
	Limit int64
	// Unsafe trims to the policy without looking at consumer groups, like
	// XADD or XTRIM with MAXLEN/MINID would. It may delete entries a group
	// has not read yet (the group never sees them) and entries a group holds
	// pending (its consumers find them deleted: the consumer package
	// acknowledges them without calling the handler and counts them in
	// Stats.Deleted). Use it only for streams whose groups may lose work;
	// Result.Lost counts what each pass took from them.
	Unsafe bool
}

// Validate reports a policy Trim and New refuse, with an error wrapping
// midstream.ErrInvalidOption.
func (p Policy) Validate() error {
	switch {
	case p.MaxLen < 0:
		return fmt.Errorf("%w: trim: MaxLen %d < 0", midstream.ErrInvalidOption, p.MaxLen)
	case p.MaxAge < 0:
		return fmt.Errorf("%w: trim: MaxAge %s < 0", midstream.ErrInvalidOption, p.MaxAge)
	case p.MaxAge > 0 && p.MaxAge < time.Millisecond:
		return fmt.Errorf("%w: trim: MaxAge %s < 1ms (entry IDs count milliseconds)", midstream.ErrInvalidOption, p.MaxAge)
	case p.MaxLen == 0 && p.MaxAge == 0:
		return fmt.Errorf("%w: trim: set MaxLen, MaxAge or both", midstream.ErrInvalidOption)
	case p.Limit < 0:
		return fmt.Errorf("%w: trim: Limit %d < 0", midstream.ErrInvalidOption, p.Limit)
	case p.Limit > MaxLimit:
		return fmt.Errorf("%w: trim: Limit %d > %d", midstream.ErrInvalidOption, p.Limit, MaxLimit)
	case p.MaxLen > MaxLength:
		return fmt.Errorf("%w: trim: MaxLen %d > %d", midstream.ErrInvalidOption, p.MaxLen, MaxLength)
	}
	return nil
}

// limit returns the pass's work limit, the default filled in.
func (p Policy) limit() int64 {
	if p.Limit == 0 {
		return DefaultLimit
	}
	return p.Limit
}
