package trim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/rediserr"
	"github.com/midstream-go/midstream/internal/telemetry"
)

// ErrRunning is returned by Run on a Trimmer that is already running.
var ErrRunning = errors.New("trim: trimmer already running")

// Trimmer applies a Policy to a set of streams in the background: every
// interval (plus jitter) it runs a tick, which visits a bounded number of
// streams and runs one or more passes of Trim on each. Create it with New
// and start it with Run.
type Trimmer struct {
	client redis.UniversalClient
	policy Policy
	cfg    config
	log    *slog.Logger
	rot    rotation
	count  *telemetry.Trimmed

	// Config errors in a row (Run's goroutine only): of each stream's
	// passes, and of finding streams (by pattern, or the partitions of
	// partitioned streams).
	streaks    map[string]*rediserr.Streak
	scanStreak rediserr.Streak

	running atomic.Bool
	ticks   atomic.Int64
	passes  atomic.Int64
	trimmed atomic.Int64
	held    atomic.Int64
	failed  atomic.Int64
}

// Stats are a Trimmer's running totals since New.
type Stats struct {
	Ticks    int64 // ticks run
	Passes   int64 // passes run, failed ones included
	Trimmed  int64 // entries deleted (sum of Result.Trimmed)
	HeldBack int64 // entries kept for groups (sum of Result.HeldBack)
	Errors   int64 // passes and SCAN calls that failed
}

// New returns a Trimmer applying p to the streams named by WithStreams, the
// partitions of the streams named by WithPartitioned and the streams
// matching WithPattern (at least one of them is required). The caller
// keeps ownership of client: the Trimmer never closes it. A bad policy or
// option fails here with an error wrapping midstream.ErrInvalidOption.
// Nothing is sent to Redis.
func New(client redis.UniversalClient, p Policy, opts ...Option) (*Trimmer, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil client", midstream.ErrInvalidOption)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	cfg := config{
		interval:   DefaultInterval,
		maxStreams: DefaultMaxStreamsPerTick,
		maxPasses:  DefaultMaxPasses,
	}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: nil option", midstream.ErrInvalidOption)
		}
		o(&cfg)
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, err
	}
	if len(cfg.streams) == 0 && len(cfg.partitioned) == 0 && cfg.pattern == "" {
		return nil, fmt.Errorf("%w: no streams: use WithStreams, WithPartitioned or WithPattern", midstream.ErrInvalidOption)
	}
	if !cfg.jitterSet {
		cfg.jitter = time.Duration(float64(cfg.interval) * DefaultJitterFraction)
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	return &Trimmer{
		client: client,
		policy: p,
		cfg:    cfg,
		log:    cfg.logger,
		rot:    rotation{client: client, names: cfg.streams, partitioned: cfg.partitioned, pattern: cfg.pattern},
		count:  telemetry.NewTrimmed(cfg.meter),
	}, nil
}

// Run trims until ctx is cancelled, then returns nil. The first tick comes
// after a random delay of at most the jitter, each next one an interval plus
// up to the jitter after the previous one ended.
//
// Failed passes (and failed SCANs) are logged, counted in Stats.Errors and
// reported (WithReport), and retried. After a tick with a failure the next
// one waits a backoff longer (with jitter, growing from 50ms to 5s while
// ticks keep failing). A connection error, a closed client or a cluster
// redirection (a failover shows as these) ends the tick: the cluster
// client's view of the cluster is reloaded, and the streams the tick did not
// get to come first in the next one. When Redis refuses the work in a way
// retrying cannot fix (a missing ACL permission, also inside the trim
// script; a named key holding another type; an unknown command) for the
// same stream, or for SCAN, rediserr.ConfigAttempts (5) times in a row, Run
// returns an error wrapping midstream.ErrMisconfigured and the Redis error.
//
// Run starts no goroutine that outlives it. It returns ErrRunning if the
// Trimmer is already running; once it has returned, it may run again.
func (t *Trimmer) Run(ctx context.Context) error {
	if !t.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer t.running.Store(false)
	t.streaks = make(map[string]*rediserr.Streak)
	t.scanStreak.Reset()
	var backoff rediserr.Backoff
	timer := time.NewTimer(t.jitter())
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		failed, err := t.tick(ctx)
		if err != nil {
			return err
		}
		wait := t.cfg.interval + t.jitter()
		if failed {
			wait += backoff.Next()
		} else {
			backoff.Reset()
		}
		timer.Reset(wait)
	}
}

// Stats returns the running totals. It is safe to call at any time.
func (t *Trimmer) Stats() Stats {
	return Stats{
		Ticks:    t.ticks.Load(),
		Passes:   t.passes.Load(),
		Trimmed:  t.trimmed.Load(),
		HeldBack: t.held.Load(),
		Errors:   t.failed.Load(),
	}
}

func (t *Trimmer) jitter() time.Duration {
	if t.cfg.jitter <= 0 {
		return 0
	}
	return rand.N(t.cfg.jitter + 1)
}

// tick visits up to the configured number of streams, once each. It
// reports whether anything failed, and returns the error Run ends with when
// a Config error persisted.
func (t *Trimmer) tick(ctx context.Context) (failed bool, fatal error) {
	t.ticks.Add(1)
	scans := t.rot.scans
	streams, _, err := t.rot.next(ctx, t.cfg.maxStreams)
	if ctx.Err() != nil {
		return false, nil
	}
	if err != nil {
		failed = true
		class := rediserr.Classify(err)
		t.failed.Add(1)
		if t.scanStreak.Observe(err) {
			return true, rediserr.Fatal("trimmer", fmt.Errorf("%s: %w", t.finding(), err))
		}
		t.log.Warn("trim: finding streams failed", "pattern", t.cfg.pattern, "error", err, "class", class)
		if t.cfg.report != nil {
			t.cfg.report(Result{}, fmt.Errorf("trim: %s: %w", t.finding(), err))
		}
		if class == rediserr.Topology {
			rediserr.Refresh(ctx, t.client) // the next tick lists the nodes afresh
		}
	} else if t.rot.scans != scans || t.cfg.pattern == "" {
		t.scanStreak.Reset() // a SCAN succeeded (a tick may need none), or no search was needed
	}
	for i, s := range streams {
		err := t.visit(ctx, s)
		if ctx.Err() != nil {
			return failed, nil // cancelled mid-pass: not a failure
		}
		if err == nil {
			delete(t.streaks, s)
			continue
		}
		failed = true
		class := rediserr.Classify(err)
		if class == rediserr.Config {
			streak := t.streaks[s]
			if streak == nil {
				streak = new(rediserr.Streak)
				t.streaks[s] = streak
			}
			if streak.Observe(err) {
				return true, rediserr.Fatal("trimmer", err)
			}
			continue // about this stream (a key of another type, a key the user may not touch)
		}
		delete(t.streaks, s)
		if class == rediserr.Topology {
			rediserr.Refresh(ctx, t.client)
		}
		// The server (or the client's view of it) is in trouble: leave the
		// other streams for the next tick, after a backoff, and this one
		// after them.
		t.rot.requeue(streams[i+1:]...)
		t.rot.requeue(s)
		return true, nil
	}
	return failed, nil
}

// finding describes how the Trimmer finds streams, for errors.
func (t *Trimmer) finding() string {
	if t.cfg.pattern == "" {
		return "finding streams (partition layouts)"
	}
	return fmt.Sprintf("finding streams %q", t.cfg.pattern)
}

// visit runs up to the configured number of passes on stream, while they
// stop at the work limit, and returns the error of the one that failed.
func (t *Trimmer) visit(ctx context.Context, stream string) error {
	for range t.cfg.maxPasses {
		if ctx.Err() != nil {
			return nil
		}
		res, err := pass(ctx, t.client, stream, t.policy, false)
		if err != nil && ctx.Err() != nil {
			return nil
		}
		t.record(res, err)
		if err != nil {
			return err
		}
		if !res.More {
			return nil
		}
	}
	return nil
}

// record counts, logs and reports one pass.
func (t *Trimmer) record(res Result, err error) {
	t.passes.Add(1)
	if err != nil {
		t.failed.Add(1)
		t.log.Warn("trim: pass failed", "stream", res.Stream, "error", err, "class", rediserr.Classify(err))
	} else {
		t.trimmed.Add(res.Trimmed)
		t.count.Add(context.Background(), res.Stream, res.Trimmed)
		t.held.Add(res.HeldBack)
		if res.Trimmed > 0 || res.HeldBack > 0 || res.Lost > 0 {
			t.log.Debug("trim: pass", "stream", res.Stream, "trimmed", res.Trimmed,
				"held_back", res.HeldBack, "cutoff", res.Cutoff, "policy_cutoff", res.PolicyCutoff,
				"lost", res.Lost, "len", res.Len)
		}
		for _, h := range res.HeldBackBy {
			t.log.Debug("trim: held back", "stream", res.Stream, "group", h.Group, "id", h.Until, "reason", string(h.Reason))
		}
	}
	if t.cfg.report != nil {
		t.cfg.report(res, err)
	}
}
