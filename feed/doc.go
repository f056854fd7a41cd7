// Package feed builds activity feeds on Redis streams, in the layout of the
// article "Redis Streams in production": activities go to one stream
// ("activity") with an actor field and are announced on "activity:new"; a
// user follows actors through the set user:{user}:following.
//
//	f, err := feed.New(rdb) // fan-out on read
//	if err != nil {
//		return err // a bad option: errors.Is(err, midstream.ErrInvalidOption)
//	}
//	_ = f.Follow(ctx, "bob", "ann")
//	id, err := f.Append(ctx, "ann", map[string]string{"type": "post", "postId": "456"})
//	page, err := f.Read(ctx, "bob", "", 20) // newest first; page.Next continues
//	sub, err := f.Live(ctx, "bob", live.Now)  // see package live
//
// Two strategies share the same API. Fan-out on read (the default) keeps one
// stream and filters it by the follow set while reading backwards
// (XREVRANGE), reading further until the page is full or the scan budget
// (WithScanBudget) is spent, in which case the page may be short and its
// Next cursor continues. Fan-out on write (WithFanOutOnWrite) also copies
// each activity, with the same ID, into every follower's timeline
// feed:{user} (capped with MAXLEN ~) and publishes on feed:{user}:new; Read
// and Live then read the timeline. Follow keeps a reverse set
// user:{user}:followers for that. Both filter by the current follow set, so
// an unfollow hides past activities too; under fan-out on write a new follow
// shows only later ones.
//
// Options follow the rule of every midstream package: a zero value means
// the default (WithFanOutOnWrite(0) is fan-out on read), a negative value
// or one above its bound (MaxScanBudget; MaxReadLimit for Read's limit)
// fails with an error wrapping midstream.ErrInvalidOption, and stream and
// channel names are checked like stream names.
//
// Append is one Lua script, so timelines receive activities in ID order. It
// touches keys it does not declare (the followers' timelines), so fan-out on
// write needs a single Redis node, not Cluster. A Feed never closes the
// client it was given.
package feed
