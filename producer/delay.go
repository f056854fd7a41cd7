package producer

import (
	"context"
	"fmt"
	"time"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/delay"
)

// MaxDelay bounds the delay of PublishIn and PublishAt: ten years.
const MaxDelay = 10 * 365 * 24 * time.Hour

// PublishIn stores v in the stream's delay set and returns its schedule
// ID: a mover (a Scheduler, or a consumer's Run, see the consumer package)
// appends it to the stream as a normal entry, with a new ID, once d has
// passed on the Redis server's clock. A d of zero or less makes it due at
// once; at most MaxDelay. The schedule ID (20 digits, prefixed with
// "<partition>:" WithPartitions) cancels the entry
// until it is moved (Cancel).
//
// The delay set is a sorted set beside the stream, in its cluster slot
// ("{orders}:midstream:delay" for stream "orders", with a hash
// "…:midstream:delay:data" holding the entries' fields). Entries are moved
// in order of due time, those due in the same millisecond in the order
// they were stored. A mover that passes every DefaultPollInterval or less
// moves an entry within about that time of its due time under normal load.
//
// opts may add headers (Header); an explicit ID or an idempotency key
// fails with midstream.ErrInvalidOption. Encoding errors and size limits
// are those of Publish, and the entry holds at most 4000 field names and
// values in all. Like a plain Publish, PublishIn does not retry beyond the
// client's own retries: if the connection fails after Redis received the
// command, the entry may have been stored. The moved entry is added
// without trimming on add, and creates the stream if it is missing
// (whatever WithNoMkStream says). With tracing on, PublishIn makes a publish span
// and the entry carries its trace context, as with Publish; the entry is
// not counted in midstream.messages.published.
func (p *Producer[T]) PublishIn(ctx context.Context, v T, d time.Duration, opts ...PublishOption) (scheduleID string, err error) {
	if p.part != nil {
		return p.part.publishIn(ctx, v, d, opts)
	}
	if err := p.plainCheck(ctx); err != nil {
		return "", err
	}
	var pc publishConfig
	for _, o := range opts {
		if o == nil {
			return "", p.wrap(fmt.Errorf("%w: nil publish option", midstream.ErrInvalidOption))
		}
		o(&pc)
	}
	switch {
	case pc.err != nil:
		return "", p.wrap(pc.err)
	case pc.partKey != "" && !p.isPart:
		return "", p.wrap(errPartitionKey)
	case pc.id != "":
		return "", p.wrap(fmt.Errorf("%w: a delayed entry gets its ID when it is moved; ID is not allowed", midstream.ErrInvalidOption))
	case pc.idemKey != "":
		return "", p.wrap(fmt.Errorf("%w: idempotency keys are not supported for delayed entries", midstream.ErrInvalidOption))
	case d > MaxDelay:
		return "", p.wrap(fmt.Errorf("%w: delay %s > %s", midstream.ErrInvalidOption, d, MaxDelay))
	}
	// A publish span whose trace context the entry carries, as with
	// Publish; the entry is not counted as published.
	ctx, span := p.obs.start(ctx, 0)
	defer func() { p.obs.end(span, 0, "", err) }()
	pc.headers = p.obs.inject(ctx, span, pc.headers)
	pairs, headers, err := p.fields(make([]string, 0, 8), v, pc.headers)
	if err != nil {
		return "", p.wrap(err)
	}
	if n := len(pairs) + len(headers); n > maxScriptFields {
		return "", p.wrap(fmt.Errorf("%w: %d field names and values; a delayed entry holds at most %d", midstream.ErrTooLarge, n, maxScriptFields))
	}
	if err := ctx.Err(); err != nil {
		return "", p.wrap(err)
	}
	id, err := delay.Add(ctx, p.client, p.stream, append(pairs, headers...), d)
	if err != nil {
		return "", p.wrap(err)
	}
	return id, nil
}

// PublishAt is PublishIn(ctx, v, time.Until(t), opts...): the entry is
// due at t by the local clock, which the delay turns into a due time on
// the server's clock, so a local clock that is off does not make it early
// or late. A t in the past makes it due at once.
func (p *Producer[T]) PublishAt(ctx context.Context, v T, t time.Time, opts ...PublishOption) (string, error) {
	return p.PublishIn(ctx, v, time.Until(t), opts...)
}

// Cancel drops the delayed entry with the schedule ID that PublishIn or
// PublishAt returned, and reports whether it was still waiting: false
// means it was moved to the stream already, cancelled before, or never
// stored. Cancel and the mover exclude each other: an entry is either
// cancelled or moved, never both.
func (p *Producer[T]) Cancel(ctx context.Context, scheduleID string) (bool, error) {
	if p.part != nil {
		return p.part.cancel(ctx, scheduleID)
	}
	if err := delay.CheckID(scheduleID); err != nil {
		return false, p.wrap(fmt.Errorf("%w: %w", midstream.ErrInvalidOption, err))
	}
	ok, err := delay.Cancel(ctx, p.client, p.stream, scheduleID)
	if err != nil {
		return false, p.wrap(err)
	}
	return ok, nil
}
