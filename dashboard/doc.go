// Package dashboard serves a web dashboard of midstream's streams: an
// http.Handler to mount in a service (as asynqmon is for asynq), also served
// by the midstream command (`midstream dashboard`).
//
//	d, err := dashboard.New(rdb, dashboard.WithPatterns("orders*"))
//	if err != nil {
//		return err // a bad option: errors.Is(err, midstream.ErrInvalidOption)
//	}
//	go d.Run(ctx) // optional: sample history in the background
//	mux.Handle("/midstream/", http.StripPrefix("/midstream", d))
//
// The page shows the streams matching the patterns with their length, lag,
// pending entries and dead-letter depth, with small charts of the last
// minutes (WithHistory); a stream's groups, consumers, trim preview and
// pending entries; its dead letters; and a live tail of new entries
// (server-sent events). Assets are embedded: nothing to build or fetch.
//
// # Write actions
//
// The dashboard is read-only unless created WithWriteActions: then dead
// letters can be redriven and deleted. Every write is a POST that must carry
// the page's anti-forgery token (an X-Midstream-CSRF header, which a page of
// another site cannot read or set) and pass net/http's cross-origin
// protection (Sec-Fetch-Site and Origin checks), and, WithToken, an
// "Authorization: Bearer" header with the token (the page asks for it). A
// write that fails any check is refused with 403 (401 for the token) and
// changes nothing. Reads need no token: mount the handler behind your own
// authentication if stream contents are private.
//
// # History
//
// Run samples the streams every WithSampleInterval and keeps WithHistory of
// samples for the charts; without Run, the dashboard samples when the page
// asks for the overview, at most once per interval, so charts fill while the
// page is open.
//
// # JSON API
//
// The page reads a small JSON API under the handler's root, whose values
// are those of `midstream … --output json`: GET api/overview, api/stream,
// api/pending, api/entry, api/dlq, api/tail (text/event-stream); POST
// api/dlq/redrive and api/dlq/delete.
//
// The dashboard never closes the client it was given.
package dashboard
