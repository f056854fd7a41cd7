package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/midstream-go/midstream/internal/ops"
)

// topFrame is one line of `midstream top --output json`.
type topFrame struct {
	Time      time.Time        `json:"time"`
	Streams   []ops.StreamRate `json:"streams"`
	Truncated bool             `json:"truncated"`
}

func (a *app) topCommand() *cobra.Command {
	var (
		interval   time.Duration
		iterations int
		sort       string
		limit      int
	)
	cmd := &cobra.Command{
		Use:   "top [PATTERN]",
		Short: "A refreshing view of the streams' rates, lag, pending and dead letters",
		Long: `Show the streams matching PATTERN (default *) every --interval: entries added
and delivered per second (over the interval, from the servers' counters,
Redis 7.0 and later), the largest group lag, pending entries, the oldest
pending entry's age and the dead-letter depth. On a terminal the view
refreshes in place; with --output json it prints one JSON object per frame.
A frame that fails is reported on stderr and the next one tries again.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if interval < 100*time.Millisecond {
				return usageError{fmt.Errorf("--interval %s < 100ms", interval)}
			}
			if iterations < 0 {
				return usageError{fmt.Errorf("--iterations %d < 0", iterations)}
			}
			if err := ops.SortSummaries(nil, sort); err != nil {
				return usageError{err}
			}
			pattern := "*"
			if len(args) == 1 {
				pattern = args[0]
			}
			c, err := a.connect(ctx)
			if err != nil {
				return err
			}
			prev, _, err := ops.Overview(ctx, c, pattern, limit, false)
			if err != nil {
				return err
			}
			then := time.Now()
			t := time.NewTicker(interval)
			defer t.Stop()
			clear := a.output == "table" && isTerminal(a.out)
			for i := 0; iterations == 0 || i < iterations; i++ {
				select {
				case <-ctx.Done():
					return nil
				case <-t.C:
				}
				cur, truncated, err := ops.Overview(ctx, c, pattern, limit, false)
				if ctx.Err() != nil {
					return nil
				}
				if err != nil { // a failover, say: the next frame tries again
					fmt.Fprintln(a.errOut, "midstream: top:", err)
					continue
				}
				now := time.Now()
				_ = ops.SortSummaries(cur, sort)
				frame := topFrame{Time: now.UTC(), Streams: ops.Rates(prev, then, cur, now), Truncated: truncated}
				prev, then = cur, now
				if a.output == "json" {
					if err := a.line(frame); err != nil {
						return err
					}
					continue
				}
				if clear {
					fmt.Fprint(a.out, "\x1b[H\x1b[2J")
				}
				if err := a.emit(frame, func(w io.Writer) { topTable(w, frame, pattern, interval) }); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "refresh interval (at least 100ms)")
	cmd.Flags().IntVar(&iterations, "iterations", 0, "stop after this many frames (0: run until interrupted)")
	cmd.Flags().StringVar(&sort, "sort", "lag", "order: name, length, lag, pending, age, dlq")
	cmd.Flags().IntVar(&limit, "limit", 200, fmt.Sprintf("most streams shown (at most %d)", ops.MaxStreams))
	return cmd
}

func topTable(w io.Writer, f topFrame, pattern string, interval time.Duration) {
	fmt.Fprintf(w, "midstream top  %s  pattern %q  every %s\n\n", f.Time.Local().Format(time.TimeOnly), pattern, interval)
	row(w, "STREAM", "ADDED/S", "DELIVERED/S", "LENGTH", "LAG", "PENDING", "OLDEST PENDING", "DLQ")
	for _, s := range f.Streams {
		row(w, s.Stream, fmt.Sprintf("%.1f", s.AddedPerSec), fmt.Sprintf("%.1f", s.DeliveredPerSec), s.Length,
			lag(s.StreamSummary), s.Pending, ms(s.OldestPendingAgeMs), s.DeadLetters)
	}
	if f.Truncated {
		fmt.Fprintln(w, "(more streams match than --limit)")
	}
}
