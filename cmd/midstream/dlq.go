package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/internal/ops"
)

// dlqFlags are the flags every dlq subcommand shares.
type dlqFlags struct {
	key    string
	filter ops.DLQFilter
}

func (f *dlqFlags) add(cmd *cobra.Command, filters bool) {
	cmd.Flags().StringVar(&f.key, "dlq", "", "dead-letter stream key (default STREAM's, as deadletter.Key)")
	if filters {
		cmd.Flags().StringVar(&f.filter.Group, "group", "", "only entries that were pending in this group")
		cmd.Flags().StringVar(&f.filter.Reason, "reason", "", "only entries whose reason contains this text")
		cmd.Flags().DurationVar(&f.filter.OlderThan, "older-than", 0, "only entries dead-lettered at least this long ago")
		cmd.Flags().DurationVar(&f.filter.NewerThan, "newer-than", 0, "only entries dead-lettered less than this long ago")
	}
}

func (f *dlqFlags) filtered() bool {
	return f.filter != (ops.DLQFilter{})
}

// queue returns the dead-letter queue of stream.
func (a *app) queue(ctx context.Context, stream string, f *dlqFlags) (*deadletter.Queue, error) {
	if err := checkStream(stream); err != nil {
		return nil, err
	}
	c, err := a.connect(ctx)
	if err != nil {
		return nil, err
	}
	if f.key == "" {
		if err := notPartitioned(ctx, c, stream, dlqWhat); err != nil {
			return nil, err
		}
	}
	q, err := deadletter.New(c, stream, deadletter.WithKey(f.key))
	if err != nil {
		return nil, usageError{err}
	}
	return q, nil
}

// dlqWhat is what notPartitioned says each partition of a stream has for
// the dlq commands.
const dlqWhat = "dead-letter stream"

// maxListedPartitions bounds the partitions notPartitioned names.
const maxListedPartitions = 10

// notPartitioned fails, as a usage error, when stream is a partitioned
// stream, whose partitions each have their own what: it names the first
// partitions to run the command on instead or, for dlqWhat, those holding
// dead letters (up to maxListedPartitions).
func notPartitioned(ctx context.Context, c redis.UniversalClient, stream, what string) error {
	parts, err := ops.StoredPartitions(ctx, c, stream)
	if err != nil || parts == nil {
		// Best effort, as for producers and consumers: a user not allowed
		// to read the layout works on the stream as a plain one.
		return nil
	}
	var total int64
	var withDead []string
	for _, p := range parts {
		total += p.DeadLetters
		if p.DeadLetters > 0 && len(withDead) < maxListedPartitions {
			withDead = append(withDead, fmt.Sprintf("%s (%d)", p.Stream, p.DeadLetters))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%q is a partitioned stream: each of its %d partitions has its own %s; run the command on a partition", stream, len(parts), what)
	if len(withDead) > 0 && what == dlqWhat {
		fmt.Fprintf(&b, ". Dead letters: %d, in %s", total, strings.Join(withDead, ", "))
		if n := countDead(parts); n > len(withDead) {
			fmt.Fprintf(&b, " and %d more partitions", n-len(withDead))
		}
		return usageError{errors.New(b.String())}
	}
	b.WriteString(", e.g. ")
	for i, p := range parts[:min(3, len(parts))] {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.Stream)
	}
	if len(parts) > 3 {
		b.WriteString(", …")
	}
	if what == dlqWhat {
		b.WriteString(" (no dead letters in any)")
	}
	return usageError{errors.New(b.String())}
}

// countDead counts the partitions with dead letters.
func countDead(parts []ops.Partition) int {
	n := 0
	for _, p := range parts {
		if p.DeadLetters > 0 {
			n++
		}
	}
	return n
}

// dlqListOutput is the JSON of `midstream dlq list`.
type dlqListOutput struct {
	Key     string           `json:"key"`
	Entries []ops.DeadLetter `json:"entries"`
	Next    string           `json:"next"`
}

// dlqChangeOutput is the JSON of `midstream dlq redrive|delete|purge`.
type dlqChangeOutput struct {
	Key string `json:"key"`
	// DryRun reports that nothing was changed: IDs is what would be.
	DryRun bool `json:"dry_run"`
	// IDs are the dead-letter entries selected (null for purge).
	IDs []string `json:"ids"`
	// Truncated reports that more entries matched than --max.
	Truncated bool `json:"truncated"`
	// Redrive is what a redrive did (null otherwise).
	Redrive *ops.RedriveResult `json:"redrive,omitempty"`
	// Deleted counts the entries delete or purge removed.
	Deleted int64 `json:"deleted"`
}

func (a *app) dlqCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List, show, redrive, delete and purge dead letters",
		Long: `Work with a stream's dead-letter stream (STREAM:dlq with STREAM's hash tag, as
deadletter.Key; --dlq for another). A partitioned stream has no dead-letter
stream of its own: each of its partitions has one, and STREAM must name a
partition (the command says which ones hold dead letters; "midstream stream
NAME" lists them all). redrive, delete and purge change data: they
ask for confirmation on a terminal, need --yes otherwise, and with --dry-run
print what they would do and change nothing. redrive and delete act on the
entries they selected before asking, never on entries that arrived since.`,
	}
	cmd.AddCommand(a.dlqList(), a.dlqShow(), a.dlqRedrive(), a.dlqDelete(), a.dlqPurge())
	return cmd
}

func (a *app) dlqList() *cobra.Command {
	var (
		f     dlqFlags
		after string
		limit int
	)
	cmd := &cobra.Command{
		Use:   "list STREAM",
		Short: "List dead letters, oldest first, with filters",
		Args:  args(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 || limit > deadletter.MaxListLimit {
				return usageError{fmt.Errorf("--limit %d is not in [1, %d]", limit, deadletter.MaxListLimit)}
			}
			q, err := a.queue(cmd.Context(), args[0], &f)
			if err != nil {
				return err
			}
			es, next, err := ops.ListDeadLetters(cmd.Context(), q, f.filter, after, limit)
			if err != nil {
				return err
			}
			return a.emit(dlqListOutput{Key: q.Key(), Entries: es, Next: next}, func(w io.Writer) {
				row(w, "ID", "GROUP", "CONSUMER", "ORIGINAL ID", "DELIVERIES", "REASON")
				for _, e := range es {
					row(w, e.ID, e.Group, e.Consumer, e.OriginalID, e.Deliveries, oneLine(e.Reason, 60))
				}
				if next != "" {
					fmt.Fprintf(w, "next page: --after %s\n", next)
				}
			})
		},
	}
	f.add(cmd, true)
	cmd.Flags().StringVar(&after, "after", "", "cursor: list entries after this ID")
	cmd.Flags().IntVar(&limit, "limit", 50, fmt.Sprintf("page size (at most %d)", deadletter.MaxListLimit))
	return cmd
}

func (a *app) dlqShow() *cobra.Command {
	var f dlqFlags
	cmd := &cobra.Command{
		Use:   "show STREAM ID",
		Short: "Show one dead letter with its provenance and fields",
		Args:  args(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			q, err := a.queue(cmd.Context(), args[0], &f)
			if err != nil {
				return err
			}
			e, ok, err := q.Get(cmd.Context(), args[1])
			if errors.Is(err, midstream.ErrInvalidOption) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%s: no dead letter %s", q.Key(), args[1])
			}
			d := ops.NewDeadLetter(e)
			return a.emit(d, func(w io.Writer) {
				row(w, "id:", d.ID)
				row(w, "dead-lettered:", d.DeadLetteredAt.Format("2006-01-02T15:04:05.000Z07:00"))
				row(w, "source:", d.Source)
				row(w, "group:", d.Group)
				row(w, "consumer:", d.Consumer)
				row(w, "original id:", d.OriginalID)
				row(w, "deliveries:", d.Deliveries)
				row(w, "reason:", oneLine(d.Reason, 0))
				for _, k := range sortedKeys(d.Fields) {
					row(w, "field "+k+":", d.Fields[k])
				}
			})
		},
	}
	f.add(cmd, false)
	return cmd
}

// changeFlags are the flags of the commands that change dead letters.
type changeFlags struct {
	ids    []string
	yes    bool
	dryRun bool
	max    int
}

func (c *changeFlags) add(cmd *cobra.Command, selects bool) {
	cmd.Flags().BoolVarP(&c.yes, "yes", "y", false, "do it without asking")
	cmd.Flags().BoolVar(&c.dryRun, "dry-run", false, "print what would be done; change nothing")
	if selects {
		cmd.Flags().StringSliceVar(&c.ids, "id", nil, "dead-letter entry IDs (instead of filters)")
		cmd.Flags().IntVar(&c.max, "max", 10_000, fmt.Sprintf("most entries selected (at most %d)", ops.MaxSelect))
	}
}

// check refuses a bad selection before anything is asked of Redis.
func (c *changeFlags) check(f *dlqFlags) error {
	if c.max < 1 || c.max > ops.MaxSelect {
		return usageError{fmt.Errorf("--max %d is not in [1, %d]", c.max, ops.MaxSelect)}
	}
	if len(c.ids) == 0 {
		return nil
	}
	if f.filtered() {
		return usageError{errors.New("--id and filters exclude each other")}
	}
	if len(c.ids) > ops.MaxSelect {
		return usageError{fmt.Errorf("more than %d --id", ops.MaxSelect)}
	}
	for _, id := range c.ids {
		if _, err := midstream.ParseID(id); err != nil {
			return usageError{fmt.Errorf("--id: %w", err)}
		}
	}
	return nil
}

// selectIDs returns the entries a redrive or delete acts on: the --id
// list, or the entries matching the filters.
func (a *app) selectIDs(ctx context.Context, q *deadletter.Queue, f *dlqFlags, c *changeFlags) (ids []string, truncated bool, err error) {
	if len(c.ids) > 0 {
		return c.ids, false, nil
	}
	ids, truncated, err = ops.SelectDeadLetters(ctx, q, f.filter, c.max)
	if errors.Is(err, midstream.ErrInvalidOption) {
		err = usageError{err}
	}
	return ids, truncated, err
}

// confirm asks before a change: yes with --yes; on a terminal, the answer
// y or yes; otherwise an error.
func (a *app) confirm(c *changeFlags, question string) error {
	if c.yes {
		return nil
	}
	if !a.interactive {
		return errors.New(question + ": not confirmed (pass --yes, or --dry-run to see what would be done)")
	}
	fmt.Fprintf(a.errOut, "%s [y/N] ", question)
	answer, _ := bufio.NewReader(a.in).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return errors.New("cancelled")
}

func (a *app) dlqRedrive() *cobra.Command {
	var (
		f    dlqFlags
		c    changeFlags
		rate float64
	)
	cmd := &cobra.Command{
		Use:   "redrive STREAM",
		Short: "Send dead letters back to the group each came from, only to it (by --id or filters), rate-limited",
		Args:  args(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if rate < 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
				return usageError{fmt.Errorf("--rate %v: want a finite number >= 0", rate)}
			}
			return a.change(cmd.Context(), args[0], &f, &c, "redrive", func(ctx context.Context, q *deadletter.Queue, out *dlqChangeOutput) error {
				res, err := ops.Redrive(ctx, q, out.IDs, rate)
				out.Redrive = &res
				return err
			})
		},
	}
	f.add(cmd, true)
	c.add(cmd, true)
	cmd.Flags().Float64Var(&rate, "rate", 100, "most entries redriven per second (0: no limit)")
	return cmd
}

func (a *app) dlqDelete() *cobra.Command {
	var (
		f dlqFlags
		c changeFlags
	)
	cmd := &cobra.Command{
		Use:   "delete STREAM",
		Short: "Delete dead letters (by --id or filters)",
		Args:  args(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(c.ids) == 0 && !f.filtered() {
				return usageError{errors.New("delete needs --id or a filter (purge deletes everything)")}
			}
			return a.change(cmd.Context(), args[0], &f, &c, "delete", func(ctx context.Context, q *deadletter.Queue, out *dlqChangeOutput) (err error) {
				out.Deleted, err = q.Delete(ctx, out.IDs...)
				return err
			})
		},
	}
	f.add(cmd, true)
	c.add(cmd, true)
	return cmd
}

// change is what redrive and delete share: check the flags, select the
// entries, ask (unless --dry-run), act on exactly those, and print what
// was done, also when act fails part way.
func (a *app) change(ctx context.Context, stream string, f *dlqFlags, c *changeFlags, verb string,
	act func(context.Context, *deadletter.Queue, *dlqChangeOutput) error) error {
	if err := c.check(f); err != nil {
		return err
	}
	q, err := a.queue(ctx, stream, f)
	if err != nil {
		return err
	}
	ids, truncated, err := a.selectIDs(ctx, q, f, c)
	if err != nil {
		return err
	}
	out := dlqChangeOutput{Key: q.Key(), DryRun: c.dryRun, IDs: ids, Truncated: truncated}
	if !c.dryRun && len(ids) > 0 {
		question := fmt.Sprintf("%s %d dead letters of %s", verb, len(ids), q.Key())
		if verb == "redrive" {
			question += " to " + q.Source()
		}
		if err := a.confirm(c, question); err != nil {
			return err
		}
		err = act(ctx, q, &out)
	}
	done := verb + "d"
	if verb == "redrive" {
		done = "redriven"
	}
	if perr := a.emit(out, func(w io.Writer) { changeTable(w, done, out) }); err == nil {
		err = perr
	}
	return err
}

func (a *app) dlqPurge() *cobra.Command {
	var (
		f dlqFlags
		c changeFlags
	)
	cmd := &cobra.Command{
		Use:   "purge STREAM",
		Short: "Delete the whole dead-letter stream",
		Args:  args(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			q, err := a.queue(ctx, args[0], &f)
			if err != nil {
				return err
			}
			n, err := q.Count(ctx)
			if err != nil {
				return err
			}
			out := dlqChangeOutput{Key: q.Key(), DryRun: c.dryRun}
			if c.dryRun {
				out.Deleted = n
			} else if n > 0 {
				if err := a.confirm(&c, fmt.Sprintf("purge %s (%d entries)", q.Key(), n)); err != nil {
					return err
				}
				if out.Deleted, err = q.Purge(ctx); err != nil {
					return err
				}
			}
			return a.emit(out, func(w io.Writer) {
				verb := "purged"
				if c.dryRun {
					verb = "would purge"
				}
				fmt.Fprintf(w, "%s %s: %d entries\n", verb, out.Key, out.Deleted)
			})
		},
	}
	f.add(cmd, false)
	c.add(cmd, false)
	return cmd
}

func changeTable(w io.Writer, verb string, out dlqChangeOutput) {
	switch {
	case out.DryRun:
		fmt.Fprintf(w, "dry run: %d entries of %s would be %s\n", len(out.IDs), out.Key, verb)
		for _, id := range out.IDs {
			fmt.Fprintln(w, id)
		}
	case out.Redrive != nil:
		r := out.Redrive
		fmt.Fprintf(w, "%s: %d redriven, %d already gone, %d left (no original fields)\n", out.Key, r.Redriven, r.Skipped, r.Empty)
	default:
		fmt.Fprintf(w, "%s: %d of %d selected entries %s\n", out.Key, out.Deleted, len(out.IDs), verb)
	}
	if out.Truncated {
		fmt.Fprintln(w, "(more entries matched than --max; run again for the rest)")
	}
}

// oneLine shortens a reason for a table: its first line, at most n runes
// (n 0: no limit).
func oneLine(s string, n int) string {
	s, _, cut := strings.Cut(s, "\n")
	if r := []rune(s); n > 0 && len(r) > n {
		return string(r[:n-1]) + "…"
	}
	if cut {
		return s + " …"
	}
	return s
}
