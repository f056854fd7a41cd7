package consumer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/keys"
)

// Defaults and bound of the retry schedule of failed entries.
const (
	// DefaultRetryDelay is the delay before the first retry of a failed
	// entry under the default policy; it doubles for each further delivery.
	DefaultRetryDelay = time.Second
	// DefaultMaxRetryDelay caps the delay of the default policy.
	DefaultMaxRetryDelay = 5 * time.Minute
	// MaxRetryDelay bounds every retry delay: what a RetryPolicy or
	// RetryAfter asks for is cut to it.
	MaxRetryDelay = 7 * 24 * time.Hour
)

// RetryPolicy returns how long an entry whose handler failed waits before
// it is delivered again, from the number of times it was delivered (this
// delivery included) and the handler's error. It is called from the worker
// that ran the handler and must return quickly; a negative result means no
// wait, one above MaxRetryDelay is cut to it, and a panic is recovered (the
// default policy's delay applies then).
//
// The delay is independent of the minimum idle time (WithMinIdle), which
// only detects consumers that stopped. A handler may ask for a delay of its
// own with RetryAfter.
type RetryPolicy func(deliveries int64, err error) time.Duration

// ExponentialRetry returns the policy that waits first after the first
// delivery, doubling for each further one up to limit, plus a random jitter of
// up to a fifth of the delay (so that entries that failed together do not
// come back together).
func ExponentialRetry(first, limit time.Duration) RetryPolicy {
	return func(deliveries int64, _ error) time.Duration {
		d := max(first, 0)
		for i := int64(1); i < deliveries && d < limit; i++ {
			d *= 2
		}
		d = min(d, limit)
		if span := int64(d) / 5; span > 0 {
			d += time.Duration(rand.Int64N(span + 1))
		}
		return d
	}
}

// WithRetryPolicy sets how long failed entries wait before their next
// delivery. Default ExponentialRetry(DefaultRetryDelay,
// DefaultMaxRetryDelay).
func WithRetryPolicy(p RetryPolicy) Option {
	return func(c *config) {
		if p == nil {
			c.fail("nil retry policy")
			return
		}
		c.retryPolicy = p
	}
}

// WithRetryDelay sets the default policy with other delays:
// ExponentialRetry(first, limit). Both are at most MaxRetryDelay, first at
// most limit; zero means the default (DefaultRetryDelay, and
// DefaultMaxRetryDelay or first if that is longer).
func WithRetryDelay(first, limit time.Duration) Option {
	return func(c *config) {
		if first == 0 {
			first = DefaultRetryDelay
		}
		if limit == 0 {
			limit = max(DefaultMaxRetryDelay, first)
		}
		if first < 0 || limit < 0 || limit > MaxRetryDelay || first > limit {
			c.fail("retry delay %v to %v: want 0 <= first <= limit <= %v", first, limit, MaxRetryDelay)
			return
		}
		c.retryPolicy = ExponentialRetry(first, limit)
	}
}

// RetryAfterError is the error RetryAfter returns: the handler asks for its
// entry to be delivered again after Delay, whatever the retry policy says.
type RetryAfterError struct {
	Err   error
	Delay time.Duration
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %v)", e.Err, e.Delay)
}

// Unwrap returns the handler's error.
func (e *RetryAfterError) Unwrap() error { return e.Err }

// ErrRetry is the error of RetryAfter(nil, d): a retry asked for without a
// failure to report.
var ErrRetry = errors.New("consumer: retry requested")

// RetryAfter returns an error that fails the handler call and has its entry
// delivered again after d (cut to [0, MaxRetryDelay]), in the spirit of
// NakWithDelay: for example after a rate-limit answer that says when to
// come back. The delivery still counts towards WithMaxDeliveries. A nil err
// is reported as ErrRetry.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		err = ErrRetry
	}
	return &RetryAfterError{Err: err, Delay: d}
}

// TimeoutError is the error of a handler call that went past
// WithHandlerTimeout: the handler's error (usually
// context.DeadlineExceeded) and the timeout.
type TimeoutError struct {
	After time.Duration
	Err   error
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("consumer: handler timed out after %v: %v", e.After, e.Err)
}

// Unwrap returns the handler's error.
func (e *TimeoutError) Unwrap() error { return e.Err }

// retryDelay returns how long m, whose handler failed with err, waits
// before its next delivery.
func (c *Consumer) retryDelay(m *Message, err error) (d time.Duration) {
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		d = ra.Delay
	} else {
		d = c.policyDelay(m.Deliveries, err)
	}
	return min(max(d, 0), MaxRetryDelay)
}

// policyDelay calls the retry policy, recovering a panic.
func (c *Consumer) policyDelay(n int64, err error) (d time.Duration) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("retry policy panicked; using the default delay", "panic", r)
			d = ExponentialRetry(DefaultRetryDelay, DefaultMaxRetryDelay)(n, err)
		}
	}()
	return c.cfg.retryPolicy(n, err)
}

// RetryKey is the sorted set where the entries of group on stream whose
// handler failed wait for their retry (member: entry ID, score: when it is
// due, in Unix milliseconds of the server's clock). The entries themselves
// stay pending in the group, owned by RetryOwner. It is always in the
// stream's cluster slot (the scripts that park and claim entries use both):
// "{orders}" gives "{orders}:midstream:retry:<group>".
func RetryKey(stream, group string) string {
	suffix := ":midstream:retry:" + group
	if k := keys.Beside(stream, suffix); keys.SameSlot(k, stream) {
		return k
	}
	return keys.TagInSlot(keys.Slot(stream)) + ":" + stream + suffix
}

// retryPoll is the longest a consumer waits before it looks at the retry
// schedule again: entries other consumers scheduled sooner than what it
// knows of are found within it.
const retryPoll = time.Second

// retryIdlePoll is how long the retry loop waits when due entries could not
// be taken (held elsewhere in the process, or no room).
const retryIdlePoll = 100 * time.Millisecond

// dueScript returns the entries of a retry schedule that are due by the
// server's clock, at most ARGV[1], and how many milliseconds until the next
// one is due (-1: none).
//
// KEYS[1] retry schedule; ARGV[1] count.
var dueScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, n)
local wait = -1
if #ids < n then
  local first = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if #first > 0 then
    wait = tonumber(first[2]) - now
  end
end
return {ids, wait}
`)

// retryLoop delivers failed entries again when their retry delay has
// passed: it claims the due entries of the retry schedule from RetryOwner
// (see claimScript), sleeping until the next one is due, at most
// retryPoll, or until this consumer schedules one (wake). It returns when
// ctx ends.
func (c *Consumer) retryLoop(ctx context.Context, d *dispatcher) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.retryWake:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		case <-t.C:
		}
		wait, err := c.retryDue(ctx, d)
		c.report(ctx, opRetry, err)
		if err != nil {
			wait = retryPoll
		}
		t.Reset(wait)
	}
}

// retryDue claims the due entries of the retry schedule, as many as there
// is room for, and returns how long to wait before looking again.
func (c *Consumer) retryDue(ctx context.Context, d *dispatcher) (time.Duration, error) {
	n := c.cfg.batchSize
	res, err := dueScript.Run(ctx, c.client, []string{RetryKey(c.stream, c.group)}, n).Slice()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("consumer: unexpected retry schedule reply %v", res)
	}
	if err != nil {
		return 0, err
	}
	ids := appendIDs(nil, res[0])
	wait, _ := res[1].(int64)
	next := retryPoll
	if wait >= 0 {
		next = min(time.Duration(wait)*time.Millisecond, retryPoll)
	}
	if len(ids) == 0 {
		return next, nil
	}
	waitCtx, cancel := context.WithTimeout(ctx, c.cfg.claimInterval)
	room := d.ledger.acquireClaim(waitCtx, len(ids))
	cancel()
	if room == 0 {
		return retryIdlePoll, nil
	}
	sctx, span := c.obs.startReclaim(ctx, c.stream, c.group, room, 0)
	taken, err := c.claim(sctx, d, ids[:room])
	c.obs.endReclaim(span, taken, err)
	if err != nil {
		return 0, err
	}
	switch {
	case taken == 0:
		return retryIdlePoll, nil
	case room < len(ids) || len(ids) == n:
		return 0, nil // more are due
	}
	return next, nil
}

// wakeRetries tells the retry loop that this consumer scheduled entries.
func (c *Consumer) wakeRetries() {
	select {
	case c.retryWake <- struct{}{}:
	default:
	}
}

// brokenError is what a brokenHandler returns: the construction error of
// a handler that cannot work, found at the first delivery because a
// middleware hid it from New.
type brokenError struct{ err error }

func (e *brokenError) Error() string { return e.err.Error() }
func (e *brokenError) Unwrap() error { return e.err }

// misconfiguredHandler reports whether err comes from a handler that
// cannot work (see Typed), whatever wrapped it.
func misconfiguredHandler(err error) bool {
	var b *brokenError
	return errors.As(err, &b)
}

// handlerFatal stops Run with err, wrapped in midstream.ErrMisconfigured.
func (f *faults) handlerFatal(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stop != nil {
		f.stop(fmt.Errorf("%w: consumer: the handler cannot work: %w", midstream.ErrMisconfigured, err))
	}
}
