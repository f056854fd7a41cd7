// Package feed builds activity feeds on Redis streams, in the layout of the
// article "Redis Streams — the missing middle ground between queues and
// Kafka": activities go to one stream ("activity") with an actor field and
// are announced on "activity:new" as JSON; a user follows actors through
// the set user:{user}:following.
//
//	f, err := feed.New(rdb) // fan-out on read
//	if err != nil {
//		return err // a bad option: errors.Is(err, midstream.ErrInvalidOption)
//	}
//	_ = f.Follow(ctx, "bob", "ann")
//	id, err := f.Append(ctx, "ann", map[string]string{"type": "post", "postId": "456"})
//	page, err := f.Read(ctx, "bob", "", 20) // newest first; page.Next continues
//	for page, err := range f.Pages(ctx, "bob", "", 20) { … } // every page
//	sub, err := f.Live(ctx, "bob", live.Now)  // see package live
//
// # The article's protocol, both ways
//
// Append writes the entry as the article does (XADD activity * actor …)
// and publishes on the activity channel the JSON object the article's
// listener parses: the activity's fields, its actor, and its entry ID under
// "id". Entries and follow sets written by the article's code are read as
// they are.
//
// # Two strategies
//
// Fan-out on read (the default) keeps one stream and filters it by the
// follow set while reading backwards (XREVRANGE), reading further until the
// page is full or the scan budget (WithScanBudget) is spent, in which case
// the page may be short and its Next cursor continues. Fan-out on write
// (WithFanOutOnWrite) also copies each activity into every follower's
// timeline feed:{user} (capped with MAXLEN ~) and publishes the copy's ID on
// feed:{user}:new; Read and Live then read the timeline. Follow keeps a
// reverse set user:{user}:followers for that (Followers lists it). Both
// strategies filter by the current follow set, so an unfollow hides past
// activities too; under fan-out on write a new follow shows only later
// ones, unless WithBackfill copies some earlier ones.
//
// A timeline copy takes the activity's own ID, so a repeated copy is
// refused and Read's items carry the activity stream's IDs. When the
// timeline already holds a newer entry (another actor's activity fanned out
// first, or a backfill) the copy is appended with a new ID and the field
// activityId (FieldActivityID) holding the activity's ID; a set beside the
// timeline (LateKey) remembers it, so a repeat is refused too.
//
// # Redis Cluster
//
// Every command and script touches the keys of one slot: Append's script
// only the activity stream (the channel is an argument; PUBLISH works from
// any node), Follow and Unfollow one set per command, and fan-out on write
// one small script per follower over that follower's timeline and late set
// (LateKey places the set in the timeline's slot, outside the feed:*
// names). Fan-out runs from the client, WithFanOutBatch followers per
// pipeline, so no script runs longer than one copy whatever the number of
// followers; a follower whose copy fails (a key of another type) is
// reported in a *FanOutError without stopping the others, and FanOut
// retries without duplicating. Append with WithIdempotencyKey (a key
// beside the activity stream, in its slot) returns the first ID on a
// repeat and completes that activity's fan-out, so a retried Append adds
// nothing twice. The article's key names are kept: none needs a hash tag.
//
// Options follow the rule of every midstream package: a zero value means
// the default (WithFanOutOnWrite(0) is fan-out on read), a negative value
// or one above its bound (MaxScanBudget; MaxReadLimit for Read's limit)
// fails with an error wrapping midstream.ErrInvalidOption, and stream and
// channel names are checked like stream names. A Feed never closes the
// client it was given.
package feed
