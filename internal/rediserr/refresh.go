package rediserr

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

// reloader is a client that can reload its view of a Redis Cluster:
// *redis.ClusterClient, or a wrapper that passes the call on.
type reloader interface {
	ReloadState(ctx context.Context)
}

// Refresh makes the client's view of the servers current after a Topology
// error. A *redis.ClusterClient (or any client with its ReloadState
// method) reloads its slots and nodes, so that commands go to the new
// master after a failover at once rather than after go-redis's own
// periodic reload. For other clients it does nothing: a failover client
// follows the Sentinels itself, a plain client or a Ring shard redials
// its address on the next command.
//
// It is cheap and safe to call on every Topology error, from any number
// of goroutines: it does not block and sends nothing itself. go-redis
// (v9) rate-limits it per client: the reload runs in a goroutine of the
// client's, one at a time, and the calls made while one runs (and in the
// 200ms after it) coalesce into one more reload. So it needs no rate
// limit of its own; ctx is passed on but go-redis's reload does not use
// it.
func Refresh(ctx context.Context, c redis.UniversalClient) {
	if r, ok := c.(reloader); ok {
		r.ReloadState(ctx)
	}
}

// RefreshAfter calls Refresh when err says the client's view of the servers
// may be out of date: a Topology error, or a command that ran out of time
// (context.DeadlineExceeded; a master that stops answering without closing
// its connections looks like this when the caller's deadline comes before
// the client's read timeout). It reports whether it did.
func RefreshAfter(ctx context.Context, c redis.UniversalClient, err error) bool {
	if err == nil || (Classify(err) != Topology && !errors.Is(err, context.DeadlineExceeded)) {
		return false
	}
	Refresh(ctx, c)
	return true
}
