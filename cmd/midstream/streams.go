package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/health"
	"github.com/midstream-go/midstream/internal/ops"
	"github.com/midstream-go/midstream/trim"
)

// streamsOutput is the JSON of `midstream streams`.
type streamsOutput struct {
	Streams   []ops.StreamSummary `json:"streams"`
	Truncated bool                `json:"truncated"`
}

func (a *app) streamsCommand() *cobra.Command {
	var (
		sort    string
		limit   int
		withDLQ bool
	)
	cmd := &cobra.Command{
		Use:   "streams [PATTERN]",
		Short: "List streams matching a pattern with their length, groups, lag, pending and dead letters",
		Long: `List the streams whose keys match a glob pattern (default *), found with SCAN
on every master of a cluster: one line each with the length, the number of
groups, the largest lag of a group, the pending entries of all groups, the age
of the oldest pending entry and the dead-letter stream's depth. Dead-letter
streams (keys ending in :dlq) are left out unless --with-dlq.

A partitioned stream whose name matches (one logical stream over several
partition streams, found by its stored layout) gets a line of its own with
the totals of its partitions, and PARTITIONS says how many it has; each
partition the pattern matches is listed too, PARTITIONS naming the stream it
belongs to.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pattern := "*"
			if len(args) == 1 {
				pattern = args[0]
			}
			if err := ops.SortSummaries(nil, sort); err != nil {
				return usageError{err}
			}
			if limit < 1 || limit > ops.MaxStreams {
				return usageError{fmt.Errorf("--limit %d is not in [1, %d]", limit, ops.MaxStreams)}
			}
			c, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			sums, truncated, err := ops.Overview(cmd.Context(), c, pattern, limit, withDLQ)
			if err != nil {
				return err
			}
			_ = ops.SortSummaries(sums, sort)
			return a.emit(streamsOutput{Streams: sums, Truncated: truncated}, func(w io.Writer) {
				row(w, "STREAM", "LENGTH", "GROUPS", "LAG", "PENDING", "OLDEST PENDING", "DLQ", "PARTITIONS")
				for _, s := range sums {
					row(w, s.Stream, s.Length, s.Groups, lag(s), s.Pending, ms(s.OldestPendingAgeMs), s.DeadLetters, partitions(s))
				}
				if truncated {
					fmt.Fprintf(w, "(more than %d streams match; narrow the pattern or raise --limit)\n", limit)
				}
			})
		},
	}
	cmd.Flags().StringVar(&sort, "sort", "name", "order: "+strings.Join(ops.SortKeys, ", ")+" (largest first but name)")
	cmd.Flags().IntVar(&limit, "limit", 1000, fmt.Sprintf("most streams listed (at most %d)", ops.MaxStreams))
	cmd.Flags().BoolVar(&withDLQ, "with-dlq", false, "list dead-letter streams too")
	return cmd
}

func (a *app) streamCommand() *cobra.Command {
	var (
		dlqKey string
		policy trim.Policy
	)
	cmd := &cobra.Command{
		Use:   "stream NAME",
		Short: "Show a stream's groups, consumers and what a safe trim would remove",
		Long: `Show one stream: its length, its groups (pending, oldest pending, lag), their
consumers (pending, idle, inactive), its dead-letter depth, and a trim preview:
what a safe trim would remove now and which groups hold entries back. The
preview uses --max-len and --max-age when given (as trim.Policy would);
without them it shows what every group is done with. Nothing is trimmed; the
preview reads at most 10,000 entries.

For a partitioned stream (NAME is the logical name, with a stored layout) it
shows the totals of its partitions (groups merged by name, consumers by
name), then one line per partition with its own figures, its dead-letter
stream and its trim preview: each partition is trimmed against its own
groups. Inspect one partition with "stream PARTITION".`,
		Args: args(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := a.connectFor(ctx, args[0])
			if err != nil {
				return err
			}
			parts, err := midstream.StoredPartitions(ctx, c, args[0])
			if err != nil {
				// Best effort: a user not allowed to read the layout
				// sees the stream as a plain one.
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: cannot read the partition layout of %q (%v); showing it as a plain stream\n", args[0], err)
				parts = nil
			}
			if parts != nil {
				if dlqKey != "" {
					return usageError{fmt.Errorf("--dlq with the partitioned stream %q: each partition has its own dead-letter stream", args[0])}
				}
				d, err := ops.PartitionedStreamInfo(ctx, c, args[0], policy)
				if err != nil {
					return err
				}
				return a.emit(d, func(w io.Writer) { partitionedTable(w, d) })
			}
			d, err := ops.StreamInfo(ctx, c, args[0], policy, health.WithDeadLetterKey(dlqKey))
			if err != nil {
				return err
			}
			return a.emit(d, func(w io.Writer) { streamTable(w, d) })
		},
	}
	cmd.Flags().StringVar(&dlqKey, "dlq", "", "dead-letter stream key (default NAME's, as deadletter.Key)")
	cmd.Flags().Int64Var(&policy.MaxLen, "max-len", 0, "trim preview: keep at most this many entries")
	cmd.Flags().DurationVar(&policy.MaxAge, "max-age", 0, "trim preview: drop entries older than this")
	return cmd
}

// partitions formats a summary's PARTITIONS cell.
func partitions(s ops.StreamSummary) string {
	switch {
	case s.Partitions > 0:
		return fmt.Sprint(s.Partitions)
	case s.PartitionOf != "":
		return "of " + s.PartitionOf
	}
	return "-"
}

// partitionedTable prints a partitioned stream's totals, then its
// partitions.
func partitionedTable(w io.Writer, d ops.StreamDetail) {
	h := d.Health
	row(w, "stream:", fmt.Sprintf("%s (partitioned, %d partitions)", h.Stream, len(d.Partitions)))
	row(w, "length:", h.Length)
	row(w, "dead letters:", fmt.Sprintf("%d (in the partitions' dead-letter streams)", h.DeadLetter.Length))
	fmt.Fprintln(w)
	row(w, "PARTITION", "LENGTH", "LAST ID", "PENDING", "LAG", "DLQ", "DLQ KEY", "REMOVABLE", "HELD BACK")
	for _, p := range d.Partitions {
		var pending, lag int64
		lagKnown := true
		for _, g := range p.Health.Groups {
			pending += g.Pending
			lag = max(lag, g.Lag)
			lagKnown = lagKnown && g.LagKnown
		}
		l := "-"
		switch {
		case len(p.Health.Groups) == 0:
		case lagKnown:
			l = fmt.Sprint(lag)
		default:
			l = "?"
		}
		removable := fmt.Sprint(p.Trim.Removable)
		if p.Trim.More {
			removable += "+"
		}
		row(w, p.Health.Stream, p.Health.Length, p.Health.LastID, pending, l, p.Health.DeadLetter.Length,
			p.Health.DeadLetter.Key, removable, p.Trim.HeldBack)
	}
	fmt.Fprintln(w)
	groupTables(w, h)
	fmt.Fprintln(w)
	t := d.Trim
	row(w, "trim preview:", t.Policy+" (per partition)")
	removable := fmt.Sprint(t.Removable)
	if t.More {
		removable += "+ (a preview stops at its limit)"
	}
	row(w, "removable now:", removable)
	row(w, "length after:", t.LengthAfter)
	if t.HeldBack > 0 {
		row(w, "held back:", fmt.Sprintf("%d entries", t.HeldBack))
	}
	for _, hb := range t.HeldBackBy {
		row(w, "  by group:", fmt.Sprintf("%s needs %s in %s (%s)", hb.Group, hb.Until, hb.Stream, hb.Reason))
	}
}

// groupTables prints a snapshot's groups, then their consumers.
func groupTables(w io.Writer, h health.StreamHealth) {
	row(w, "GROUP", "CONSUMERS", "PENDING", "OLDEST PENDING", "IDLE", "DELIVERIES", "LAST DELIVERED", "LAG")
	for _, g := range h.Groups {
		lag := "?"
		if g.LagKnown {
			lag = fmt.Sprint(g.Lag)
		}
		row(w, g.Name, g.ConsumerCount, g.Pending, dur(g.OldestPendingAge), dur(g.OldestPendingIdle),
			g.OldestPendingDeliveries, g.LastDeliveredID, lag)
	}
	fmt.Fprintln(w)
	row(w, "GROUP", "CONSUMER", "PENDING", "IDLE", "INACTIVE")
	for _, g := range h.Groups {
		for _, c := range g.Consumers {
			inactive := dur(c.Inactive)
			if c.Inactive < 0 {
				inactive = "never read"
			}
			row(w, g.Name, c.Name, c.Pending, dur(c.Idle), inactive)
		}
	}
}

func streamTable(w io.Writer, d ops.StreamDetail) {
	h := d.Health
	row(w, "stream:", h.Stream)
	row(w, "length:", h.Length)
	row(w, "last id:", h.LastID)
	row(w, "dead letters:", fmt.Sprintf("%d (%s)", h.DeadLetter.Length, h.DeadLetter.Key))
	fmt.Fprintln(w)
	groupTables(w, h)
	fmt.Fprintln(w)
	t := d.Trim
	row(w, "trim preview:", t.Policy)
	removable := fmt.Sprint(t.Removable)
	if t.More {
		removable += "+ (the preview stops at its limit)"
	}
	row(w, "removable now:", removable)
	row(w, "length after:", t.LengthAfter)
	row(w, "cutoff:", t.Cutoff)
	if t.HeldBack > 0 {
		row(w, "held back:", fmt.Sprintf("%d entries below the policy's cutoff %s", t.HeldBack, t.PolicyCutoff))
	}
	for _, hb := range t.HeldBackBy {
		row(w, "  by group:", fmt.Sprintf("%s needs %s (%s)", hb.Group, hb.Until, hb.Reason))
	}
}

func (a *app) pendingCommand() *cobra.Command {
	var q ops.PendingQuery
	cmd := &cobra.Command{
		Use:   "pending STREAM GROUP",
		Short: "Page through a group's pending entries: owner, idle time, deliveries",
		Long: `List a group's pending entries, oldest first, one page at a time: the owner
(consumer), how long each has been idle and how many times it was delivered.
Pass the printed next cursor as --after for the next page.`,
		Args: args(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if q.Limit < 1 || q.Limit > ops.MaxPendingLimit {
				return usageError{fmt.Errorf("--limit %d is not in [1, %d]", q.Limit, ops.MaxPendingLimit)}
			}
			c, err := a.connectFor(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := notPartitioned(cmd.Context(), c, args[0], "pending entries in each group"); err != nil {
				return err
			}
			p, err := ops.Pending(cmd.Context(), c, args[0], args[1], q)
			if err != nil {
				return err
			}
			return a.emit(p, func(w io.Writer) {
				head := []any{"ID", "CONSUMER", "IDLE", "DELIVERIES"}
				if q.WithFields {
					head = append(head, "FIELDS")
				}
				row(w, head...)
				for _, e := range p.Entries {
					cells := []any{e.ID, e.Consumer, ms(e.IdleMs), e.Deliveries}
					if q.WithFields {
						f := fields(e.Fields)
						if e.Deleted {
							f = "(deleted from the stream)"
						}
						cells = append(cells, f)
					}
					row(w, cells...)
				}
				if p.Next != "" {
					fmt.Fprintf(w, "next page: --after %s\n", p.Next)
				}
			})
		},
	}
	cmd.Flags().StringVar(&q.After, "after", "", "cursor: list entries after this ID")
	cmd.Flags().StringVar(&q.Consumer, "consumer", "", "only this consumer's entries")
	cmd.Flags().DurationVar(&q.MinIdle, "min-idle", 0, "only entries idle at least this long")
	cmd.Flags().IntVar(&q.Limit, "limit", ops.DefaultPendingLimit, fmt.Sprintf("page size (at most %d)", ops.MaxPendingLimit))
	cmd.Flags().BoolVar(&q.WithFields, "with-fields", false, "show each entry's fields")
	return cmd
}

func (a *app) entryCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "entry STREAM ID",
		Short: "Show one entry",
		Args:  args(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connectFor(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			e, ok, err := ops.GetEntry(cmd.Context(), c, args[0], args[1])
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%s: no entry %s", args[0], args[1])
			}
			return a.emit(e, func(w io.Writer) {
				row(w, "stream:", e.Stream)
				row(w, "id:", e.ID)
				row(w, "added:", e.Time.Format(time.RFC3339Nano))
				for _, k := range sortedKeys(e.Fields) {
					row(w, k+":", e.Fields[k])
				}
			})
		},
	}
}
