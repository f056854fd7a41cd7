package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/health"
)

// MaxStreams bounds how many streams one listing reads.
const MaxStreams = 100_000

// scanCount is the COUNT hint of one SCAN call.
const scanCount = 1000

// FindStreams returns the keys of type stream matching the glob pattern
// (SCAN MATCH … TYPE stream), on every master of a cluster, sorted, at most
// limit of them (1..MaxStreams); truncated reports that more matched. Keys
// ending in deadletter.KeySuffix are left out unless withDLQ.
func FindStreams(ctx context.Context, client redis.UniversalClient, pattern string, limit int, withDLQ bool) (streams []string, truncated bool, err error) {
	if pattern == "" {
		pattern = "*"
	}
	return findKeys(ctx, client, pattern, "stream", limit, func(k string) bool {
		return withDLQ || !strings.HasSuffix(k, deadletter.KeySuffix)
	})
}

// findKeys returns the keys of type keyType matching the glob pattern that
// keep accepts, on every master of a cluster, sorted, at most limit of them
// (1..MaxStreams); truncated reports that more matched.
func findKeys(ctx context.Context, client redis.UniversalClient, pattern, keyType string, limit int, keep func(string) bool) (found []string, truncated bool, err error) {
	if limit < 1 || limit > MaxStreams {
		return nil, false, fmt.Errorf("%w: limit %d is not in [1, %d]", midstream.ErrInvalidOption, limit, MaxStreams)
	}
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
	)
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		var cursor uint64
		for {
			keys, next, err := c.ScanType(ctx, cursor, pattern, scanCount, keyType).Result()
			if err != nil {
				return fmt.Errorf("SCAN: %w", err)
			}
			mu.Lock()
			for _, k := range keys {
				if keep(k) {
					seen[k] = true
				}
			}
			full := len(seen) > limit
			mu.Unlock()
			if next == 0 || full {
				return nil
			}
			cursor = next
		}
	}
	switch c := client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return scan(ctx, n) })
	default:
		err = scan(ctx, client)
	}
	if err != nil {
		return nil, false, err
	}
	for k := range seen {
		found = append(found, k)
	}
	slices.Sort(found)
	if len(found) > limit {
		return found[:limit], true, nil
	}
	return found, false, nil
}

// StreamSummary is one line of a stream listing: the stream's health
// folded over its groups.
type StreamSummary struct {
	Stream string `json:"stream"`
	Length int64  `json:"length"`
	LastID string `json:"last_id"`
	// EntriesAdded counts every entry ever added (Redis 7.0 and later).
	EntriesAdded int64 `json:"entries_added"`
	// EntriesRead is the sum of the groups' entries read, where known.
	EntriesRead int64 `json:"entries_read"`
	Groups      int   `json:"groups"`
	// Lag is the largest lag of a group, null when no group's is known.
	Lag *int64 `json:"lag"`
	// Pending is the sum of the groups' pending entries.
	Pending int64 `json:"pending"`
	// OldestPendingAgeMs is the age of the oldest pending entry of any
	// group, in milliseconds; 0 when nothing is pending.
	OldestPendingAgeMs int64  `json:"oldest_pending_age_ms"`
	DeadLetterKey      string `json:"dead_letter_key"`
	DeadLetters        int64  `json:"dead_letters"`
	// Partitions is, for a partitioned stream (midstream.Partitions), the
	// number of its partitions, and the other fields are the totals of
	// the partitions (health.PartitionedHealth.Total: LastID and
	// DeadLetterKey ""); 0 for a stream.
	Partitions int `json:"partitions"`
	// PartitionOf is, for a partition of a partitioned stream listed by
	// Overview, the partitioned stream's name; "" otherwise.
	PartitionOf string `json:"partition_of"`
}

// Summarize folds a snapshot into one line.
func Summarize(h health.StreamHealth) StreamSummary {
	s := StreamSummary{Stream: h.Stream, Length: h.Length, LastID: h.LastID, EntriesAdded: h.EntriesAdded,
		Groups: len(h.Groups), DeadLetterKey: h.DeadLetter.Key, DeadLetters: h.DeadLetter.Length}
	for _, g := range h.Groups {
		if g.LagKnown && (s.Lag == nil || g.Lag > *s.Lag) {
			s.Lag = &g.Lag
		}
		s.Pending += g.Pending
		if g.EntriesReadKnown {
			s.EntriesRead += g.EntriesRead
		}
		s.OldestPendingAgeMs = max(s.OldestPendingAgeMs, g.OldestPendingAge.Milliseconds())
	}
	return s
}

// snapshotWorkers bounds the snapshots taken at once by Snapshots.
const snapshotWorkers = 8

// Snapshots takes the health of each stream (health.Snapshot with opts), a
// few at a time, in the order given. Streams deleted meanwhile are left
// out; the first other error ends the call.
func Snapshots(ctx context.Context, client redis.UniversalClient, streams []string, opts ...health.Option) ([]health.StreamHealth, error) {
	out := make([]health.StreamHealth, len(streams))
	ok := make([]bool, len(streams))
	errs := make([]error, len(streams))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(snapshotWorkers, len(streams)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				h, err := health.Snapshot(ctx, client, streams[i], opts...)
				switch {
				case errors.Is(err, midstream.ErrNoStream):
				case err != nil:
					errs[i] = err
				default:
					out[i], ok[i] = h, true
				}
			}
		}()
	}
	for i := range streams {
		if ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	res := out[:0]
	for i, h := range out {
		if ok[i] {
			res = append(res, h)
		}
	}
	return res, nil
}

// Overview finds the streams matching pattern (FindStreams) and the
// partitioned streams whose names match it (FindPartitioned), and
// summarizes each: a partitioned stream by its partitions' totals, its
// partitions (when pattern matches them) each as a stream, with
// PartitionOf set. truncated reports that more than limit streams, or
// more than limit partitioned streams, matched.
func Overview(ctx context.Context, client redis.UniversalClient, pattern string, limit int, withDLQ bool) (sums []StreamSummary, truncated bool, err error) {
	streams, truncated, err := FindStreams(ctx, client, pattern, limit, withDLQ)
	if err != nil {
		return nil, false, err
	}
	logical, more, err := FindPartitioned(ctx, client, pattern, limit)
	if err != nil {
		return nil, false, err
	}
	hs, err := Snapshots(ctx, client, streams, health.WithoutConsumers())
	if err != nil {
		return nil, false, err
	}
	partOf := map[string]string{}
	totals, err := partitionedSummaries(ctx, client, logical, partOf)
	if err != nil {
		return nil, false, err
	}
	sums = make([]StreamSummary, 0, len(hs)+len(totals))
	for _, h := range hs {
		s := Summarize(h)
		s.PartitionOf = partOf[h.Stream]
		sums = append(sums, s)
	}
	sums = append(sums, totals...)
	slices.SortStableFunc(sums, func(a, b StreamSummary) int { return strings.Compare(a.Stream, b.Stream) })
	return sums, truncated || more, nil
}

// isNoStream reports an error wrapping midstream.ErrNoStream.
func isNoStream(err error) bool { return errors.Is(err, midstream.ErrNoStream) }

// SortKeys are the orders SortSummaries knows.
var SortKeys = []string{"name", "length", "lag", "pending", "age", "dlq"}

// SortSummaries orders sums by key (one of SortKeys): by name ascending,
// by the others descending (largest first), ties by name.
func SortSummaries(sums []StreamSummary, key string) error {
	var val func(StreamSummary) int64
	switch key {
	case "", "name":
	case "length":
		val = func(s StreamSummary) int64 { return s.Length }
	case "lag":
		val = func(s StreamSummary) int64 {
			if s.Lag == nil {
				return -1
			}
			return *s.Lag
		}
	case "pending":
		val = func(s StreamSummary) int64 { return s.Pending }
	case "age":
		val = func(s StreamSummary) int64 { return s.OldestPendingAgeMs }
	case "dlq":
		val = func(s StreamSummary) int64 { return s.DeadLetters }
	default:
		return fmt.Errorf("%w: sort key %q is not one of %s", midstream.ErrInvalidOption, key, strings.Join(SortKeys, ", "))
	}
	slices.SortStableFunc(sums, func(a, b StreamSummary) int {
		if val != nil {
			if x, y := val(a), val(b); x != y {
				if x > y {
					return -1
				}
				return 1
			}
		}
		return strings.Compare(a.Stream, b.Stream)
	})
	return nil
}
