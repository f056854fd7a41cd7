package feed

import (
	"context"
	"iter"
)

// Pages returns Read as an iterator: the pages of user's feed, newest
// first, from cursor ("" for the newest), limit items at most each, until a
// page without Next. An error is yielded once, and ends the iteration.
// Breaking out of the loop stops it; nothing is left running.
func (f *Feed) Pages(ctx context.Context, user, cursor string, limit int) iter.Seq2[Page, error] {
	return func(yield func(Page, error) bool) {
		for {
			p, err := f.Read(ctx, user, cursor, limit)
			if err != nil {
				yield(Page{}, err)
				return
			}
			if !yield(p, nil) || p.Next == "" {
				return
			}
			cursor = p.Next
		}
	}
}
