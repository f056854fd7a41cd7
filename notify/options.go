package notify

import (
	"fmt"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/live"
)

// Defaults used when an option is not given.
const (
	// DefaultKeyPrefix starts every key of a user: the stream is
	// DefaultKeyPrefix+user, as in "notifications:123".
	DefaultKeyPrefix = "notifications:"
	// DefaultCountBudget is how many entries after the read watermark
	// UnreadCount reads at most.
	DefaultCountBudget = 10_000
)

// Option configures a Notifier. Options are checked by New.
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

// WithKeyPrefix sets the prefix of every key (default DefaultKeyPrefix).
func WithKeyPrefix(p string) Option {
	return func(c *config) {
		if err := midstream.CheckStream(p); err != nil {
			c.fail("key prefix: %v", err)
			return
		}
		c.prefix = p
	}
}

// WithMaxLen keeps about the n newest entries of each user's stream
// (XADD MAXLEN ~ n on Send). Trimmed notifications are gone, read or not. By
// default streams are not trimmed.
func WithMaxLen(n int64) Option {
	return func(c *config) {
		if n < 1 {
			c.fail("max length %d should be >= 1", n)
			return
		}
		c.maxLen = n
	}
}

// WithCountBudget sets how many entries after the read watermark
// UnreadCount reads at most (default DefaultCountBudget).
func WithCountBudget(n int64) Option {
	return func(c *config) {
		if n < 1 {
			c.fail("count budget %d should be >= 1", n)
			return
		}
		c.budget = n
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
