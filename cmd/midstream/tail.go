package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/midstream-go/midstream/internal/ops"
)

// errEnough ends a tail that printed --count entries.
var errEnough = errors.New("enough entries")

func (a *app) tailCommand() *cobra.Command {
	var (
		from    string
		filters []string
		count   int
	)
	cmd := &cobra.Command{
		Use:   "tail STREAM",
		Short: "Print a stream's entries as they are added, gap-free",
		Long: `Print a stream's entries as they arrive, from now (default), from the
beginning, or after an entry ID (--from), keeping those whose fields match
every --filter name=value. It reads with blocking XREAD from its own cursor,
so no entry is skipped or printed twice; it retries failed reads. It runs
until interrupted, or until --count entries were printed. With --output json
it prints one JSON object per line.`,
		Args: args(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := checkStream(args[0]); err != nil {
				return err
			}
			if count < 0 {
				return usageError{fmt.Errorf("--count %d < 0", count)}
			}
			filter, err := ops.ParseFilters(filters)
			if err != nil {
				return usageError{err}
			}
			c, err := a.connect(ctx)
			if err != nil {
				return err
			}
			after, err := ops.StartID(ctx, c, args[0], from)
			if err != nil {
				return err
			}
			n := 0
			err = ops.Tail(ctx, c, args[0], ops.TailOptions{After: after, Filter: filter,
				OnRetry: func(err error) { fmt.Fprintln(a.errOut, "midstream: tail: retrying:", err) },
			}, func(e ops.Entry) error {
				var err error
				if a.output == "json" {
					err = a.line(e)
				} else {
					_, err = fmt.Fprintf(a.out, "%s  %s  %s\n", e.ID, e.Time.Local().Format(time.TimeOnly+".000"), fields(e.Fields))
				}
				if err != nil {
					return err
				}
				if n++; count > 0 && n >= count {
					return errEnough
				}
				return nil
			})
			if errors.Is(err, errEnough) {
				return nil
			}
			return err
		},
	}
	cmd.Flags().StringVar(&from, "from", ops.TailNow, "where to start: now, beginning, or an entry ID (exclusive)")
	cmd.Flags().StringSliceVar(&filters, "filter", nil, "print only entries with this field value (name=value; repeatable)")
	cmd.Flags().IntVar(&count, "count", 0, "stop after this many entries (0: run until interrupted)")
	return cmd
}
