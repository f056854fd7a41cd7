package notify

import (
	"fmt"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/option"
	"github.com/midstream-go/midstream/live"
)

// Defaults used when an option is not given, or given its zero value.
const (
	// DefaultKeyPrefix starts every key of a user: the stream is
	// DefaultKeyPrefix+user, as in "notifications:123".
	DefaultKeyPrefix = "notifications:"
	// DefaultCountBudget is how many entries after the read watermark
	// UnreadCount reads at most.
	DefaultCountBudget = 10_000
)

// Bounds. A larger value (and a negative one) fails with an error wrapping
// midstream.ErrInvalidOption.
const (
	// MaxCountBudget bounds WithCountBudget. UnreadCount counts in one
	// script, holding Redis meanwhile: about a tenth of a second at the
	// bound.
	MaxCountBudget = 100_000
	// MaxListLimit bounds the limit of List and Unread: a page is held in
	// memory and one XREVRANGE asks for up to that many entries.
	MaxListLimit = 10_000
)

// Option configures a Notifier. Options are checked by New: a zero value
// means the default, a negative one or one above its Max… bound fails, as
// does a nil live option, with an error wrapping
// midstream.ErrInvalidOption.
type Option func(*config)

type config struct {
	prefix  string
	maxLen  int64
	budget  int64
	liveOps []live.Option
	errs    []error
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: "+format, append([]any{midstream.ErrInvalidOption}, args...)...))
}

// WithKeyPrefix sets the prefix of every key, checked like a stream name.
// Default (also for "") DefaultKeyPrefix.
func WithKeyPrefix(p string) Option {
	return func(c *config) {
		if p == "" {
			c.prefix = DefaultKeyPrefix
			return
		}
		if err := midstream.CheckStream(p); err != nil {
			c.fail("key prefix: %v", err)
			return
		}
		c.prefix = p
	}
}

// WithMaxLen keeps about the n newest entries of each user's stream
// (XADD MAXLEN ~ n on Send). Trimmed notifications are gone, read or not.
// Zero means the default: streams are not trimmed.
func WithMaxLen(n int64) Option {
	return func(c *config) {
		if n < 0 {
			c.fail("max length %d is negative", n)
			return
		}
		c.maxLen = n
	}
}

// WithCountBudget sets how many entries after the read watermark
// UnreadCount reads at most, up to MaxCountBudget. Default
// DefaultCountBudget.
func WithCountBudget(n int64) Option {
	return func(c *config) {
		if err := option.Set(&c.budget, "count budget", n, DefaultCountBudget, 1, MaxCountBudget); err != nil {
			c.errs = append(c.errs, err)
		}
	}
}

// WithLiveOptions passes options to the subscriptions Live starts.
func WithLiveOptions(opts ...live.Option) Option {
	return func(c *config) {
		for _, o := range opts {
			if o == nil {
				c.fail("nil live option")
				return
			}
		}
		c.liveOps = append(c.liveOps, opts...)
	}
}
