package delay

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/internal/rediserr"
)

// Mover moves the due entries of one stream's delay set to the stream, in
// passes of at most Batch entries (see Move).
type Mover struct {
	Client redis.UniversalClient
	Stream string
	// Batch bounds the entries one pass (one script) moves.
	Batch int
	// Poll bounds the wait between passes: a pass that finds nothing due
	// sleeps until the next entry is due, or Poll, whichever is sooner, so
	// that entries added meanwhile by other processes are late by at most
	// about Poll.
	Poll time.Duration
	// Log receives failed passes (at Warn while a failure persists, Debug
	// otherwise); nil means none.
	Log *slog.Logger
	// OnPass, when set, is called after every pass with its outcome.
	OnPass func(moved int, err error)
}

// Run moves due entries until ctx is cancelled, then returns nil. Failed
// passes are retried after a backoff (50 ms growing to 5 s); on a
// connection error or a redirection the cluster client's view is reloaded
// first. When Redis refuses the script in a way retrying cannot fix (a
// missing permission, a key of another type) rediserr.ConfigAttempts times
// in a row, Run returns an error wrapping midstream.ErrMisconfigured.
func (m *Mover) Run(ctx context.Context) error {
	var (
		backoff rediserr.Backoff
		streak  rediserr.Streak
	)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		moved, next, err := Move(ctx, m.Client, m.Stream, m.Batch)
		if m.OnPass != nil {
			m.OnPass(moved, err)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if streak.Observe(err) {
				return rediserr.Fatal("move delayed entries of "+m.Stream, err)
			}
			if rediserr.Classify(err) == rediserr.Topology {
				rediserr.Refresh(ctx, m.Client)
			}
			if m.Log != nil {
				m.Log.Warn("moving delayed entries failed", "stream", m.Stream, "error", err)
			}
			timer.Reset(backoff.Next())
			continue
		}
		streak.Reset()
		backoff.Reset()
		timer.Reset(m.wait(moved, next))
	}
}

// wait returns the pause before the next pass: none while a pass fills its
// batch or entries are due, else until the next entry is due, at most Poll.
func (m *Mover) wait(moved int, next time.Duration) time.Duration {
	switch {
	case moved >= m.Batch, next == 0:
		return 0
	case next < 0:
		return m.Poll
	}
	return min(next, m.Poll)
}
