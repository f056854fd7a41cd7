package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/midstream-go/midstream/internal/ops"
)

// emit prints v as indented JSON with --output json, else calls table.
func (a *app) emit(v any, table func(w io.Writer)) error {
	if a.output == "json" {
		enc := json.NewEncoder(a.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(a.out, 0, 0, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// line prints v as one line of JSON (for streams of values: tail, top).
func (a *app) line(v any) error {
	return json.NewEncoder(a.out).Encode(v)
}

// row writes tab-separated cells and a newline.
func row(w io.Writer, cells ...any) {
	for i, c := range cells {
		if i > 0 {
			fmt.Fprint(w, "\t")
		}
		fmt.Fprint(w, c)
	}
	fmt.Fprintln(w)
}

// dur formats a duration for a table, rounded to what a person reads.
func dur(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func ms(n int64) string { return dur(time.Duration(n) * time.Millisecond) }

// fields formats a field map as name=value pairs, sorted by name.
func fields(m map[string]string) string {
	var b strings.Builder
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	return b.String()
}

// lag formats a stream's lag: "-" without groups, "?" when Redis cannot
// tell.
func lag(s ops.StreamSummary) string {
	switch {
	case s.Groups == 0:
		return "-"
	case s.Lag == nil:
		return "?"
	}
	return fmt.Sprint(*s.Lag)
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }
