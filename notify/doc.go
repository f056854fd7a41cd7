// Package notify keeps per-user notifications in Redis streams, in the
// layout of the article "Redis Streams — the missing middle ground between
// queues and Kafka": one stream per user, notifications:{user}, whose
// entries are {content, read: "false", createdAt}, with a live channel
// notifications:{user}:live carrying {"id", "content"} as JSON.
//
//	n, err := notify.New(rdb, notify.WithMaxLen(1000))
//	if err != nil {
//		return err // a bad option: errors.Is(err, midstream.ErrInvalidOption)
//	}
//	id, err := n.Send(ctx, "123", "Your order shipped",
//		notify.WithFields(map[string]string{"orderId": "o-1"}), // more fields
//		notify.WithIdempotencyKey("shipped:o-1"))               // a retry returns id
//	count, err := n.UnreadCount(ctx, "123")
//	page, err := n.Unread(ctx, "123", "", 20) // newest first; page.Next continues
//	for page, err := range n.UnreadPages(ctx, "123", "", 20) { … }
//	err = n.MarkRead(ctx, "123", id)
//	sub, err := n.Live(ctx, "123", live.Now) // see package live
//
// # The article's protocol, both ways
//
// Read markers other clients write the article's way (an entry
// {markedReadId, readAt}) mark their target read, and are never listed; an
// entry written with read "true" counts as read. MarkRead writes such a
// marker too, and MarkAllRead writes one for every notification among the
// newest WithMarkerWindow entries (100, the article's window) that has none
// there, so the article's getUnreadNotifications agrees with Unread after
// every operation. WithoutReadMarkers turns the markers off.
//
// # Read state without scanning the stream
//
// Read state lives beside the stream: a hash (StateKey) with a watermark
// (everything at or below it is read) and a fold cursor (markers at or
// below it are taken into account), and a sorted set (ReadSetKey) of the
// IDs above the watermark marked read one by one. The write calls
// (MarkRead, MarkAllRead, Sync) are Lua scripts that each read a bounded
// number of entries (about 200): they fold the markers written since the
// cursor and move the watermark over the read entries that follow it, a
// step at a time, so no call holds Redis long whatever the stream's length
// (about a millisecond per step). Send keeps the cursor at the end of the
// stream when it was there.
//
// The read calls (List, Unread, UnreadCount) run no script: plain reads of
// the state and of the stream, in chunks of 1000 entries, so a read-only
// ACL user or a replica serves them. They honour the markers after the
// fold cursor by reading them; UnreadCount reads the entries after the
// watermark. A read set of more than 1000 members is read by range, for
// the entries a call looks at. Each reads at most WithCountBudget entries, and returns an
// error wrapping ErrCountBudget beyond that: a stream other clients filled
// with markers is caught up by Sync, in steps.
//
// # Keys and Redis Cluster
//
// The stream keeps the article's name. The side keys are named after it
// inside a hash tag, "{notifications:123}:notify-state",
// "{notifications:123}:notify-read" and the idempotency keys
// "{notifications:123}:notify-idem:…": they share the stream's cluster slot
// for any user ID (an ID holding braces gets a numeric tag of the same
// slot), so every script touches one slot, and they are outside the
// notifications:* names, so a client scanning that prefix meets streams
// only and no user ID (such as "123:read") can collide with them.
//
// Earlier versions kept the read state in notifications:{user}:read-upto,
// :read and :read-synced. Reads honour those keys while the new state does
// not exist; the first write call for the user (or Sync) brings them over
// and deletes them (Sync also finishes a migration a crash interrupted).
// Nothing needs to be run beforehand.
//
// Options follow the rule of every midstream package: a zero value means
// the default (WithMaxLen(0): no trimming), a negative value or one above
// its bound (MaxCountBudget; MaxListLimit for the limit of List and Unread)
// fails with an error wrapping midstream.ErrInvalidOption. WithMaxLen trims
// each stream on Send and on marker writes (MAXLEN ~). A Notifier never
// closes the client it was given.
package notify
