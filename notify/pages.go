package notify

import (
	"context"
	"iter"

	"github.com/midstream-go/midstream/internal/paging"
)

// ListPages returns List as an iterator: the pages of user's notifications,
// newest first, from cursor ("" for the newest), limit at most each, until
// a page without Next. An error is yielded once and ends the iteration.
func (n *Notifier) ListPages(ctx context.Context, user, cursor string, limit int) iter.Seq2[Page, error] {
	return n.pages(ctx, user, cursor, limit, false)
}

// UnreadPages is ListPages over Unread.
func (n *Notifier) UnreadPages(ctx context.Context, user, cursor string, limit int) iter.Seq2[Page, error] {
	return n.pages(ctx, user, cursor, limit, true)
}

func (n *Notifier) pages(ctx context.Context, user, cursor string, limit int, unreadOnly bool) iter.Seq2[Page, error] {
	return paging.Seq(cursor, func(c string) (Page, error) { return n.list(ctx, user, c, limit, unreadOnly) },
		func(p Page) string { return p.Next })
}
