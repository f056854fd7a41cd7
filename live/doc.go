// Package live follows a Redis stream in real time without losing or
// repeating an entry: pub/sub is the wake-up, the stream is the truth.
//
// A Subscription keeps a cursor, the ID of the last entry it delivered. It
// SUBSCRIBEs to a channel first, then reads the stream after the cursor
// (XRANGE, in pages) and delivers each entry in ID order. Whenever a message
// arrives on the channel, the pub/sub connection fails, or the poll interval
// passes without news, it reads the stream from the cursor again. Message
// payloads are never trusted, so a dropped connection, a lost or duplicated
// notification or a slow receiver cannot cause a gap or a duplicate.
//
//	sub, err := live.Subscribe(ctx, rdb, "activity", "activity:new", live.Now)
//	if err != nil {
//		return err // a bad option: errors.Is(err, midstream.ErrInvalidOption)
//	}
//	defer sub.Close()
//	for e := range sub.C() {
//		fmt.Println(e.ID, e.Fields)
//	}
//	return sub.Err() // nil when ctx ended it
//
// Writers add the entry, then PUBLISH anything (the entry ID, by
// convention) on the channel:
//
//	id, _ := rdb.XAdd(ctx, &redis.XAddArgs{Stream: "activity", Values: fields}).Result()
//	rdb.Publish(ctx, "activity:new", id)
//
// Entries is the same as an iterator. Start from an entry ID (exclusive) to
// resume where an earlier subscription stopped (Subscription.Last), from Now,
// or from Beginning. WithFilter delivers a subset (the feed package filters
// by the follow set); WithPageSize and WithPollInterval tune reading. As in
// every midstream package, an option's zero value means its default, and a
// negative value, one above its bound (MaxPageSize, MaxPollInterval) or a
// nil filter or logger fails with an error wrapping
// midstream.ErrInvalidOption; the channel is checked like a stream name.
//
// Delivery is unbuffered: a receiver that stops receiving stops the reading,
// and cancelling ctx or calling Close ends the subscription and every
// goroutine it started. A Subscription uses one pub/sub connection of the
// client and never closes the client.
package live
