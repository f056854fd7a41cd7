package trim

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// scanner is a client, or one node of a cluster or ring, that can SCAN.
type scanner interface {
	ScanType(ctx context.Context, cursor uint64, match string, count int64, keyType string) *redis.ScanCmd
}

// rotation hands out the streams to visit, a bounded number per tick: the
// named streams, then the ones SCAN finds, one node after the other. A cycle
// ends when every name was handed out and every node's SCAN came back to
// cursor 0; a tick stops at the end of a cycle, and the next tick starts a
// new one. Only Run's goroutine uses it.
type rotation struct {
	client  redis.UniversalClient
	names   []string
	pattern string

	pos    int       // next name to hand out
	nodes  []scanner // this cycle's nodes, fetched when its SCAN starts
	node   int       // node being scanned
	cursor uint64    // its SCAN cursor
	found  []string  // keys SCAN returned, not handed out yet
}

// next returns up to n distinct streams, and whether the cycle ended with
// them. It stops early when ctx ends or SCAN fails (returning what it has
// and the error; the cycle goes on from there next time).
func (r *rotation) next(ctx context.Context, n int) (streams []string, cycleEnd bool, err error) {
	seen := make(map[string]bool)
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			streams = append(streams, s)
		}
	}
	for len(streams) < n && r.pos < len(r.names) {
		add(r.names[r.pos])
		r.pos++
	}
	if r.pattern == "" {
		if r.pos == len(r.names) {
			r.pos = 0
			return streams, true, nil
		}
		return streams, false, nil
	}
	if r.nodes == nil {
		if r.nodes, err = masters(ctx, r.client); err != nil {
			r.nodes = nil
			return streams, false, err
		}
		r.node, r.cursor = 0, 0
	}
	calls := 0
	for len(streams) < n {
		if len(r.found) > 0 {
			add(r.found[0])
			r.found = r.found[1:]
			continue
		}
		if r.node == len(r.nodes) { // every node scanned: the cycle ends
			r.pos, r.nodes, r.found = 0, nil, nil
			return streams, true, nil
		}
		if calls == maxScanCalls || ctx.Err() != nil {
			break
		}
		calls++
		keys, cursor, err := r.nodes[r.node].ScanType(ctx, r.cursor, r.pattern, scanCount, "stream").Result()
		if err != nil {
			return streams, false, err
		}
		r.found = append(r.found, keys...)
		r.cursor = cursor
		if cursor == 0 {
			r.node++
		}
	}
	return streams, false, nil
}

// masters returns the nodes to SCAN: every master of a cluster, every shard
// of a ring, or the client itself.
func masters(ctx context.Context, client redis.UniversalClient) ([]scanner, error) {
	var (
		mu    sync.Mutex
		nodes []*redis.Client
	)
	collect := func(_ context.Context, c *redis.Client) error {
		mu.Lock()
		nodes = append(nodes, c)
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
		return []scanner{client}, nil
	}
	slices.SortFunc(nodes, func(a, b *redis.Client) int { return strings.Compare(a.Options().Addr, b.Options().Addr) })
	out := make([]scanner, len(nodes))
	for i, n := range nodes {
		out[i] = n
	}
	return out, nil
}
