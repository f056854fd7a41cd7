package producer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/delay"
	"github.com/midstream-go/midstream/internal/keys"
	"github.com/midstream-go/midstream/internal/option"
	"github.com/midstream-go/midstream/internal/rediserr"
)

// Bounds and defaults of idempotent publishing.
const (
	// DefaultIdempotencyWindow is how long a key is remembered unless
	// WithIdempotencyWindow says otherwise: 100 s, the order of Redis 8.6's
	// IDMP defaults.
	DefaultIdempotencyWindow = 100 * time.Second
	// MaxIdempotencyWindow bounds WithIdempotencyWindow.
	MaxIdempotencyWindow = 7 * 24 * time.Hour
	// DefaultIdempotentAttempts is how many times a keyed publish is sent
	// at most, unless WithIdempotentAttempts says otherwise.
	DefaultIdempotentAttempts = 5
	// MaxIdempotentAttempts bounds WithIdempotentAttempts.
	MaxIdempotentAttempts = 100
	// MaxIdempotencyKeyLen bounds the length of an idempotency key, in
	// bytes.
	MaxIdempotencyKeyLen = 1024
	// maxScriptFields bounds the field names and values of an entry added
	// through a script (idempotent or delayed): Lua's unpack passes them
	// to XADD on a stack of about 8000 values.
	maxScriptFields = delay.MaxFields
)

// IdempotencyKey makes the call idempotent: the entry is added only if no
// entry was added with the same key to the same stream within the
// producer's idempotency window; otherwise Publish returns the ID of the
// entry added first, adding nothing (even if v differs). It takes
// precedence over the producer's key function (WithIdempotencyKeyFunc).
// The key is at most MaxIdempotencyKeyLen bytes and not empty.
func IdempotencyKey(key string) PublishOption {
	return func(pc *publishConfig) {
		if err := checkIdempotencyKey(key); err != nil && pc.err == nil {
			pc.err = err
		}
		pc.idemKey = key
	}
}

// WithIdempotencyKeyFunc makes publishing idempotent for values that have
// a key: fn returns the idempotency key of a value ("" for none). It
// applies to Publish and to each entry of PublishBatch. New fails if fn
// does not take the producer's T.
func WithIdempotencyKeyFunc[T any](fn func(T) string) Option {
	return func(cfg *config) {
		if fn == nil {
			cfg.fail("nil idempotency key func")
			return
		}
		cfg.idemFunc = fn
	}
}

// WithIdempotencyWindow sets how long an idempotency key is remembered
// after its entry was added, at least a millisecond and at most
// MaxIdempotencyWindow. Default DefaultIdempotencyWindow.
func WithIdempotencyWindow(d time.Duration) Option {
	return func(cfg *config) {
		if d > 0 && d < time.Millisecond {
			cfg.fail("idempotency window %s < 1ms", d)
			return
		}
		if err := option.Set(&cfg.idemWindow, "idempotency window", d, DefaultIdempotencyWindow, time.Millisecond, MaxIdempotencyWindow); err != nil {
			cfg.errs = append(cfg.errs, err)
		}
	}
}

// WithIdempotentAttempts sets how many times at most a publish with an
// idempotency key is sent when its outcome is unknown (see Publish), at
// most MaxIdempotentAttempts. Default DefaultIdempotentAttempts.
func WithIdempotentAttempts(n int) Option {
	return func(cfg *config) {
		if err := option.Set(&cfg.idemAttempts, "idempotent attempts", n, DefaultIdempotentAttempts, 1, MaxIdempotentAttempts); err != nil {
			cfg.errs = append(cfg.errs, err)
		}
	}
}

func checkIdempotencyKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty idempotency key", midstream.ErrInvalidOption)
	case len(key) > MaxIdempotencyKeyLen:
		return fmt.Errorf("%w: idempotency key of %d bytes > %d", midstream.ErrInvalidOption, len(key), MaxIdempotencyKeyLen)
	}
	return nil
}

// IdempotencyStateKey returns the Redis key that remembers idempotency key
// key of stream while its window lasts: a string holding the entry ID, in
// the stream's cluster slot ("{orders}:midstream:idem:<key>" for stream
// "orders").
func IdempotencyStateKey(stream, key string) string {
	return keys.SlotPrefix(stream) + ":midstream:idem:" + key
}

// idemScript adds an entry unless its key is remembered: KEYS[1] is the
// key's state, KEYS[2] the stream, ARGV[1] the window in milliseconds and
// the rest XADD's arguments after the stream. It returns the entry's ID, or
// nil when XADD added nothing (NOMKSTREAM on a missing stream).
var idemScript = redis.NewScript(`
local id = redis.call('GET', KEYS[1])
if id then return id end
id = redis.call('XADD', KEYS[2], unpack(ARGV, 2))
if not id then return false end
redis.call('SET', KEYS[1], id, 'PX', ARGV[1])
return id
`)

// idempotency is a producer's idempotency settings.
type idempotency struct {
	window   time.Duration
	attempts int
}

// idemCall is one keyed entry: its key, its XADD arguments and the command
// of its latest attempt.
type idemCall struct {
	key  string
	xadd []any
	cmd  *redis.StringCmd
}

// idemCmd returns a new attempt of c (EVALSHA of idemScript).
func (p *Producer[T]) idemCmd(ctx context.Context, c *idemCall) *redis.StringCmd {
	args := make([]any, 0, len(c.xadd)+4)
	args = append(args, "EVALSHA", idemScript.Hash(), 2, IdempotencyStateKey(p.stream, c.key), p.stream,
		p.idem.window.Milliseconds())
	args = append(args, c.xadd[2:]...)
	c.cmd = redis.NewStringCmd(ctx, args...)
	return c.cmd
}

// newIdemCall checks and prepares a keyed entry.
func (p *Producer[T]) newIdemCall(ctx context.Context, v T, id, key string, extra []string) (*idemCall, error) {
	if err := checkIdempotencyKey(key); err != nil {
		return nil, err
	}
	xadd, err := p.xaddArgs(ctx, v, id, extra)
	if err != nil {
		return nil, err
	}
	if n := len(xadd); n > maxScriptFields+16 {
		return nil, fmt.Errorf("%w: %d arguments; an idempotent publish takes at most %d fields and values", midstream.ErrTooLarge, n, maxScriptFields)
	}
	return &idemCall{key: key, xadd: xadd}, nil
}

// maxScriptLoads bounds the rounds a keyed publish spends reloading its
// script after NOSCRIPT replies.
const maxScriptLoads = 3

// retryIdempotent sends again, with send, the keyed entries whose last
// attempt failed without telling whether the script ran (a connection
// that ended, a timeout, a redirection, a busy or loading server), until
// each has a reply that settles it or has been sent p.idem.attempts times,
// or ctx ends. A NOSCRIPT reply (the script never ran: first use, or the
// server was restarted or its scripts flushed) loads the script and sends
// again, without counting an attempt, up to maxScriptLoads times. The
// script makes every attempt after one that ran a no-op that returns the
// first one's ID.
func (p *Producer[T]) retryIdempotent(ctx context.Context, calls []*idemCall, send func([]*redis.StringCmd)) {
	backoff := rediserr.Backoff{Max: time.Second}
	sent, loads := 1, 0
	for {
		var again []*idemCall
		noScript, topology := false, false
		for _, c := range calls {
			err := c.cmd.Err()
			switch {
			case err == nil:
			case isNoScript(err):
				if loads < maxScriptLoads {
					noScript = true
					again = append(again, c)
				}
			case sent < p.idem.attempts && ambiguous(err):
				topology = topology || rediserr.Classify(err) == rediserr.Topology
				again = append(again, c)
			}
		}
		if len(again) == 0 || ctx.Err() != nil {
			return
		}
		if noScript {
			loads++
			if err := idemScript.Load(ctx, p.client).Err(); err != nil && !ambiguous(err) {
				return
			}
		} else {
			sent++
			if topology {
				rediserr.Refresh(ctx, p.client)
			}
			if !backoff.Wait(ctx) {
				return
			}
		}
		cmds := make([]*redis.StringCmd, len(again))
		for i, c := range again {
			cmds[i] = p.idemCmd(ctx, c)
		}
		send(cmds)
		calls = again
	}
}

// sendOne sends cmd alone or coalesced; if ctx ends before it is sent, cmd
// fails with ctx's error.
func (p *Producer[T]) sendOne(ctx context.Context, cmd *redis.StringCmd) {
	if p.coalesce == nil {
		p.send.send(ctx, cmd)
		return
	}
	if !p.coalesce.do(ctx, cmd) {
		cmd.SetErr(ctx.Err())
	}
}

// ambiguous reports whether err leaves open whether Redis ran the command:
// no reply came (a connection that ended, a timeout, a closed client), or
// a reply says to ask again elsewhere or later (MOVED, ASK, READONLY,
// CLUSTERDOWN, TRYAGAIN, MASTERDOWN, LOADING, BUSY). The caller's own
// context ending is not retried, nor a durable publish that Redis ran but
// too few replicas confirmed (a *DurabilityError, whatever WAIT's own
// error): sending it again would add nothing and wait once more.
func ambiguous(err error) bool {
	var derr *DurabilityError
	if errors.Is(err, redis.Nil) || errors.As(err, &derr) {
		return false
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		return rediserr.Classify(err) == rediserr.Topology ||
			redis.HasErrorPrefix(err, "LOADING") || redis.HasErrorPrefix(err, "BUSY")
	}
	return rediserr.Classify(err) != rediserr.Canceled
}

func isNoScript(err error) bool { return redis.HasErrorPrefix(err, "NOSCRIPT") }
