package notify

import (
	"context"
	"iter"
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
	return func(yield func(Page, error) bool) {
		for {
			p, err := n.list(ctx, user, cursor, limit, unreadOnly)
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
