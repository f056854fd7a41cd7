package trim

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/rediserr"
)

// TrimPartitioned runs one pass of the policy p over each partition of the
// partitioned stream stream (see midstream.Partitions), one after the
// other, and returns one Result per partition, in partition order
// (Result.Stream is the partition's key). Each pass is Trim on that
// partition: atomic, against the partition's own consumer groups, so it
// never trims an entry a group has not read or holds pending there; the
// policy's bounds apply per partition (MaxLen 1000 keeps about 1000
// entries in each, Limit bounds each pass).
//
// The partitions come from the layout stored in Redis
// (midstream.StoredPartitions): a stream without one fails with an error
// wrapping midstream.ErrNoStream. A pass that fails does not stop the
// others: its Result names only the partition, and the error returned
// joins the failures, each naming its partition. Arguments are checked as
// Trim checks them.
func TrimPartitioned(ctx context.Context, client redis.UniversalClient, stream string, p Policy) ([]Result, error) {
	return partitioned(ctx, client, stream, p, false)
}

// PreviewPartitioned is Preview for each partition of the partitioned
// stream stream: what TrimPartitioned would do now, trimming nothing. Its
// arguments, errors and results are TrimPartitioned's.
func PreviewPartitioned(ctx context.Context, client redis.UniversalClient, stream string, p Policy) ([]Result, error) {
	return partitioned(ctx, client, stream, p, true)
}

func partitioned(ctx context.Context, client redis.UniversalClient, stream string, p Policy, preview bool) ([]Result, error) {
	if err := checkArgs(client, stream, p); err != nil {
		return nil, err
	}
	keys, err := midstream.StoredPartitions(ctx, client, stream)
	if err != nil {
		return nil, fmt.Errorf("trim %s: %w", stream, err)
	}
	if keys == nil {
		return nil, fmt.Errorf("trim %s: not a partitioned stream (no layout stored at %q): %w",
			stream, midstream.PartitionLayoutKey(stream), midstream.ErrNoStream)
	}
	out := make([]Result, len(keys))
	var errs []error
	refreshed := false
	for i, k := range keys {
		if err := ctx.Err(); err != nil {
			for j := i; j < len(keys); j++ {
				out[j] = Result{Stream: keys[j]}
			}
			return out, errors.Join(append(errs, err)...)
		}
		res, err := pass(ctx, client, k, p, preview)
		if err != nil {
			err = fmt.Errorf("partition %d of %q: %w", i, stream, err)
			if !preview && !refreshed && rediserr.Classify(err) == rediserr.Topology {
				rediserr.Refresh(ctx, client)
				refreshed = true
			}
			errs = append(errs, err)
		}
		out[i] = res
	}
	return out, errors.Join(errs...)
}
