// Package paging turns a cursor-paginated read into an iterator over its
// pages, for the Pages methods of feed and notify.
package paging

import "iter"

// Seq yields the pages read returns, from cursor on, each next cursor taken
// with next, until a page whose next cursor is "" or an error, which is
// yielded once and ends the iteration.
func Seq[P any](cursor string, read func(cursor string) (P, error), next func(P) string) iter.Seq2[P, error] {
	return func(yield func(P, error) bool) {
		for {
			p, err := read(cursor)
			if err != nil {
				var zero P
				yield(zero, err)
				return
			}
			if !yield(p, nil) || next(p) == "" {
				return
			}
			cursor = next(p)
		}
	}
}
