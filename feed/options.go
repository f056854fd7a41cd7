package feed

import (
	"fmt"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/live"
)

// Defaults used when an option is not given.
const (
	DefaultStream     = "activity"     // the activity stream, as in the article
	DefaultChannel    = "activity:new" // its live channel, as in the article
	DefaultScanBudget = 1000           // entries Read examines at most per call
)

// Option configures a Feed. Options are checked by New.
type Option func(*config)

type config struct {
	stream, channel string
	fanOutMaxLen    int64 // > 0: fan-out on write
	budget          int64
	liveOps         []live.Option
	errs            []error
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("%w: "+format, append([]any{midstream.ErrInvalidOption}, args...)...))
}

// WithStream sets the activity stream (default DefaultStream).
func WithStream(name string) Option {
	return func(c *config) {
		if err := midstream.CheckStream(name); err != nil {
			c.fail("stream: %v", err)
			return
		}
		c.stream = name
	}
}

// WithChannel sets the activity stream's live channel (default
// DefaultChannel).
func WithChannel(name string) Option {
	return func(c *config) {
		if name == "" {
			c.fail("empty channel")
			return
		}
		c.channel = name
	}
}

// WithFanOutOnWrite makes Append copy each activity into the timeline
// (feed:{user}) of every follower of its actor, capped at about maxLen
// entries (MAXLEN ~). Read and Live then read the user's timeline.
func WithFanOutOnWrite(maxLen int64) Option {
	return func(c *config) {
		if maxLen < 1 {
			c.fail("timeline max length %d should be >= 1", maxLen)
			return
		}
		c.fanOutMaxLen = maxLen
	}
}

// WithScanBudget sets how many entries one Read examines at most (default
// DefaultScanBudget).
func WithScanBudget(n int64) Option {
	return func(c *config) {
		if n < 1 {
			c.fail("scan budget %d should be >= 1", n)
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
