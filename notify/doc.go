// Package notify keeps per-user notifications in Redis streams, in the
// layout of the article "Redis Streams in production": one stream per user,
// notifications:{user}, whose entries are {content, read: "false",
// createdAt}, with a live channel notifications:{user}:live.
//
//	n, err := notify.New(rdb, notify.WithMaxLen(1000))
//	if err != nil {
//		return err // a bad option: errors.Is(err, midstream.ErrInvalidOption)
//	}
//	id, err := n.Send(ctx, "123", "Your order shipped")
//	count, err := n.UnreadCount(ctx, "123")
//	page, err := n.Unread(ctx, "123", "", 20) // newest first; page.Next continues
//	err = n.MarkRead(ctx, "123", id)
//	sub, err := n.Live(ctx, "123", live.Now) // see package live
//
// # Reading state without scanning the stream
//
// Read state lives beside the stream: a watermark
// (notifications:{user}:read-upto, an entry ID: everything at or below it is
// read) and a small read index (the set notifications:{user}:read, IDs above
// the watermark marked read one by one). Lua scripts update them
// atomically: MarkRead adds the ID to the set and moves the watermark over
// every read entry that follows it, dropping set members it passes;
// MarkAllRead moves the watermark to the last entry and empties the set.
// UnreadCount and Unread read only the entries after the watermark
// (UnreadCount at most WithCountBudget of them), so their cost follows the
// unread backlog, not the stream's length.
//
// Other clients may keep writing the article's way, and are honoured: an
// entry {markedReadId, readAt} marks that ID read and is never listed as a
// notification, and an entry written with read "true" counts as read.
// Markers are folded into the read set incrementally: each call reads only
// the entries added since the previous one (the cursor is kept in
// notifications:{user}:read-synced).
//
// Options follow the rule of every midstream package: a zero value means
// the default (WithMaxLen(0): no trimming), a negative value or one above
// its bound (MaxCountBudget; MaxListLimit for the limit of List and Unread)
// fails with an error wrapping midstream.ErrInvalidOption.
//
// WithMaxLen trims each stream on Send (MAXLEN ~). In Redis Cluster, give
// users a hash tag ("{123}") so a user's keys share a slot. A Notifier never
// closes the client it was given.
package notify
