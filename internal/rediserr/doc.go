// Package rediserr is midstream's one error classifier, with what the
// long-running loops need to act on its verdict: a shared backoff with
// jitter, a refresh of the client's cluster view, and a tracker that turns
// a configuration error persisting past a bounded number of attempts into
// an error wrapping midstream.ErrMisconfigured.
//
// A loop uses it like this:
//
//	var (
//		b      rediserr.Backoff
//		streak rediserr.Streak
//	)
//	for {
//		err := step(ctx)
//		if ctx.Err() != nil {
//			return nil // the caller's ctx ended: not a failure
//		}
//		if streak.Observe(err) {
//			return rediserr.Fatal("step", err) // wraps midstream.ErrMisconfigured
//		}
//		if err == nil {
//			b.Reset()
//			continue
//		}
//		switch rediserr.Classify(err) {
//		case rediserr.Topology:
//			rediserr.Refresh(ctx, client)
//		case rediserr.NoGroup:
//			recreate(ctx)
//		}
//		log.Warn("step failed; retrying", "error", err)
//		if !b.Wait(ctx) {
//			return nil
//		}
//	}
//
// Every class but Canceled is retried after a backoff; what differs is what
// happens first (Refresh, recreating the group) and that Config errors end
// the loop after ConfigAttempts attempts in a row. Never a hot loop, never
// silent: a loop logs or reports each failure.
package rediserr
