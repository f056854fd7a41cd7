package trim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/rediserr"
)

// scanner is a client, or one node of a cluster or ring, that can SCAN.
type scanner interface {
	ScanType(ctx context.Context, cursor uint64, match string, count int64, keyType string) *redis.ScanCmd
}

// node is one server to SCAN, named by its address.
type node struct {
	addr string
	scanner
}

// rotation hands out the streams to visit, a bounded number per tick: the
// streams the previous tick did not get to (requeue), the named streams,
// then the ones SCAN finds, one node after the other. A cycle ends when
// every name was handed out and every node's SCAN came back to cursor 0; a
// tick stops at the end of a cycle, and the next tick starts a new one.
// Only Run's goroutine uses it.
//
// The nodes are listed afresh on every call that scans, and the node under
// way is followed by its address: after a failover the nodes that left
// (whose clients a cluster client closes) are never scanned again, and
// their replacements are scanned from the start.
type rotation struct {
	client      redis.UniversalClient
	names       []string
	partitioned []string // logical streams whose partitions are visited
	pattern     string
	list        func(context.Context, redis.UniversalClient) ([]node, error) // nil: masters

	retry  []string        // handed out but not visited: first next time
	cycle  []string        // names, then the partitions of partitioned, for this cycle
	listed bool            // cycle is set
	pos    int             // next name of cycle to hand out
	done   map[string]bool // addresses of the nodes this cycle scanned to the end
	node   string          // address of the node being scanned, "" before it is picked
	cursor uint64          // its SCAN cursor
	found  []string        // keys SCAN returned, not handed out yet
	scans  int64           // SCAN calls that succeeded, ever
}

// next returns up to n distinct streams, and whether the cycle ended with
// them. It stops early when ctx ends or listing the nodes or SCAN fails
// (returning what it has and the error; the cycle goes on from there next
// time, without the node whose SCAN failed unless Redis refused it as a
// Config error).
func (r *rotation) next(ctx context.Context, n int) (streams []string, cycleEnd bool, err error) {
	seen := make(map[string]bool)
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			streams = append(streams, s)
		}
	}
	for len(streams) < n && len(r.retry) > 0 {
		add(r.retry[0])
		r.retry = r.retry[1:]
	}
	var rerr error // streams whose partitions could not be read: the others go on
	if !r.listed {
		r.cycle, rerr = r.resolve(ctx)
		r.listed = true
	}
	for len(streams) < n && r.pos < len(r.cycle) {
		add(r.cycle[r.pos])
		r.pos++
	}
	if r.pattern == "" {
		if r.pos == len(r.cycle) {
			r.pos, r.listed = 0, false
			return streams, true, rerr
		}
		return streams, false, rerr
	}
	var nodes []node
	listed, calls := false, 0
	for len(streams) < n {
		if len(r.found) > 0 {
			add(r.found[0])
			r.found = r.found[1:]
			continue
		}
		if !listed {
			list := r.list
			if list == nil {
				list = masters
			}
			if nodes, err = list(ctx, r.client); err != nil {
				return streams, false, errors.Join(rerr, err)
			}
			listed = true
		}
		cur, ok := r.pick(nodes)
		if !ok { // every node scanned: the cycle ends
			r.pos, r.listed, r.done, r.node, r.cursor, r.found = 0, false, nil, "", 0, nil
			return streams, true, rerr
		}
		if calls == maxScanCalls || ctx.Err() != nil {
			break
		}
		calls++
		keys, cursor, err := cur.ScanType(ctx, r.cursor, r.pattern, scanCount, "stream").Result()
		if err != nil {
			if rediserr.Classify(err) != rediserr.Config && ctx.Err() == nil && r.othersLeft(nodes, cur.addr) {
				// The node is down, frozen or busy: pass it over for
				// the rest of this cycle, so that the streams of the
				// other nodes are still found (the next cycle tries it
				// again). A refused command stays, to become fatal if
				// it persists, and so does the only node left to scan
				// (a single server), which goes on from its cursor.
				r.markDone(cur.addr)
			}
			return streams, false, errors.Join(rerr, err)
		}
		r.scans++
		r.found = append(r.found, keys...)
		r.cursor = cursor
		if cursor == 0 {
			r.markDone(cur.addr)
		}
	}
	return streams, false, rerr
}

// resolve returns the names a cycle hands out: the named streams, then the
// partitions of each partitioned stream, read from its stored layout (one
// HGETALL each); a stream without a stored layout has none yet. A layout
// that cannot be read leaves its stream out of this cycle, not the others:
// the error joins those failures.
func (r *rotation) resolve(ctx context.Context) ([]string, error) {
	if len(r.partitioned) == 0 {
		return r.names, nil
	}
	out := slices.Clone(r.names)
	var errs []error
	for _, s := range r.partitioned {
		keys, err := midstream.StoredPartitions(ctx, r.client, s)
		if err != nil {
			errs = append(errs, fmt.Errorf("partitions of %q: %w", s, err))
			continue
		}
		out = append(out, keys...)
	}
	return out, errors.Join(errs...)
}

// pick returns the node to scan: the one under way if it is still listed,
// otherwise the first listed one this cycle has not scanned (from cursor
// 0), or false when there is none left.
func (r *rotation) pick(nodes []node) (node, bool) {
	if r.node != "" {
		for _, n := range nodes {
			if n.addr == r.node {
				return n, true
			}
		}
		r.node, r.cursor = "", 0 // it left: its replacement starts over
	}
	for _, n := range nodes {
		if !r.done[n.addr] {
			r.node, r.cursor = n.addr, 0
			return n, true
		}
	}
	return node{}, false
}

// markDone ends the scan of the node at addr for this cycle.
func (r *rotation) markDone(addr string) {
	if r.done == nil {
		r.done = make(map[string]bool)
	}
	r.done[addr] = true
	r.node, r.cursor = "", 0
}

// othersLeft reports whether a node of nodes other than addr is still to
// be scanned in this cycle.
func (r *rotation) othersLeft(nodes []node, addr string) bool {
	for _, n := range nodes {
		if n.addr != addr && !r.done[n.addr] {
			return true
		}
	}
	return false
}

// requeue hands streams out again first in the next call, in order: those
// a tick did not get to visit.
func (r *rotation) requeue(streams ...string) {
	r.retry = append(r.retry, streams...)
}

// masters returns the nodes to SCAN, by address: every master of a cluster
// (as the cluster client knows them now: ForEachMaster reloads its view of
// the cluster first), every shard of a ring, or the client itself.
func masters(ctx context.Context, client redis.UniversalClient) ([]node, error) {
	var (
		mu    sync.Mutex
		nodes []node
	)
	collect := func(_ context.Context, c *redis.Client) error {
		mu.Lock()
		nodes = append(nodes, node{addr: c.Options().Addr, scanner: c})
		mu.Unlock()
		return nil
	}
	switch c := client.(type) {
	case *redis.ClusterClient:
		if err := c.ForEachMaster(ctx, collect); err != nil {
			return nil, err
		}
	case *redis.Ring:
		if err := c.ForEachShard(ctx, collect); err != nil {
			return nil, err
		}
	default:
		return []node{{addr: "self", scanner: client}}, nil
	}
	slices.SortFunc(nodes, func(a, b node) int { return strings.Compare(a.addr, b.addr) })
	return nodes, nil
}
