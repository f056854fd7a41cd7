package feed

import (
	"context"
	"iter"

	"github.com/midstream-go/midstream/internal/paging"
)

// Pages returns Read as an iterator: the pages of user's feed, newest
// first, from cursor ("" for the newest), limit items at most each, until a
// page without Next. An error is yielded once, and ends the iteration.
// Breaking out of the loop stops it; nothing is left running.
func (f *Feed) Pages(ctx context.Context, user, cursor string, limit int) iter.Seq2[Page, error] {
	return paging.Seq(cursor, func(c string) (Page, error) { return f.Read(ctx, user, c, limit) }, nextCursor)
}

func nextCursor(p Page) string { return p.Next }
