package ops

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/health"
	"github.com/midstream-go/midstream/trim"
)

// layoutSuffix ends the key of every stored partition layout
// (midstream.PartitionLayoutKey).
var layoutSuffix = midstream.PartitionLayoutKey("")

// FindPartitioned returns the partitioned streams whose logical names match
// the glob pattern, found by their stored layouts (SCAN MATCH
// pattern+layout suffix TYPE hash, on every master of a cluster), sorted,
// at most limit of them; truncated reports that more matched.
func FindPartitioned(ctx context.Context, client redis.UniversalClient, pattern string, limit int) (streams []string, truncated bool, err error) {
	if pattern == "" {
		pattern = "*"
	}
	layouts, truncated, err := findKeys(ctx, client, pattern+layoutSuffix, "hash", limit, func(string) bool { return true })
	if err != nil {
		return nil, false, err
	}
	for _, k := range layouts {
		streams = append(streams, strings.TrimSuffix(k, layoutSuffix))
	}
	return streams, truncated, nil
}

// PartitionedSummaries summarizes each partitioned stream (the total of
// health.SnapshotPartitioned, without consumers), with Partitions set.
// Streams whose layout went away meanwhile are left out; the first other
// error ends the call.
func PartitionedSummaries(ctx context.Context, client redis.UniversalClient, streams []string) ([]StreamSummary, error) {
	return partitionedSummaries(ctx, client, streams, nil)
}

// partitionedSummaries is PartitionedSummaries, also recording in partOf
// (when not nil) the partitioned stream of each partition.
func partitionedSummaries(ctx context.Context, client redis.UniversalClient, streams []string, partOf map[string]string) ([]StreamSummary, error) {
	var out []StreamSummary
	for _, s := range streams {
		p, err := health.SnapshotPartitioned(ctx, client, s, health.WithoutConsumers())
		if err != nil {
			if isNoStream(err) {
				continue
			}
			return nil, err
		}
		sum := Summarize(p.Total)
		sum.Partitions = len(p.Partitions)
		if partOf != nil {
			for _, h := range p.Partitions {
				partOf[h.Stream] = s
			}
		}
		out = append(out, sum)
	}
	return out, nil
}

// StoredPartitions returns the partitions of stream (midstream.StoredPartitions)
// with the length of each one's dead-letter stream, or nil when stream is
// not partitioned.
func StoredPartitions(ctx context.Context, client redis.UniversalClient, stream string) ([]Partition, error) {
	keys, err := midstream.StoredPartitions(ctx, client, stream)
	if err != nil || keys == nil {
		return nil, err
	}
	pipe := client.Pipeline()
	cmds := make([]*redis.IntCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.XLen(ctx, deadletter.Key(k))
	}
	_, _ = pipe.Exec(ctx)
	out := make([]Partition, len(keys))
	for i, k := range keys {
		n, err := cmds[i].Result()
		if err != nil && err != redis.Nil {
			return nil, fmt.Errorf("XLEN %s: %w", deadletter.Key(k), err)
		}
		out[i] = Partition{Stream: k, DeadLetterKey: deadletter.Key(k), DeadLetters: n}
	}
	return out, nil
}

// Partition is one partition of a partitioned stream and its dead letters.
type Partition struct {
	Stream        string `json:"stream"`
	DeadLetterKey string `json:"dead_letter_key"`
	DeadLetters   int64  `json:"dead_letters"`
}

// PartitionedStreamInfo is StreamInfo for the partitioned stream stream:
// the total (of health.SnapshotPartitioned with opts) and the sum of the
// partitions' trim previews, with each partition's detail in Partitions. A
// stream without a stored layout fails with an error wrapping
// midstream.ErrNoStream.
func PartitionedStreamInfo(ctx context.Context, client redis.UniversalClient, stream string, policy trim.Policy, opts ...health.Option) (StreamDetail, error) {
	p, err := health.SnapshotPartitioned(ctx, client, stream, opts...)
	if err != nil {
		return StreamDetail{}, err
	}
	label, policy := previewPolicy(policy)
	res, err := trim.PreviewPartitioned(ctx, client, stream, policy)
	if err != nil {
		return StreamDetail{}, err
	}
	if len(res) != len(p.Partitions) {
		return StreamDetail{}, fmt.Errorf("%w: the layout of %q changed while it was read", midstream.ErrPartitionLayout, stream)
	}
	total := TrimView{Policy: label, HeldBackBy: []HeldBack{}}
	d := StreamDetail{Health: p.Total, Partitions: make([]StreamDetail, len(res))}
	for i, r := range res {
		v := trimView(label, r)
		d.Partitions[i] = StreamDetail{Health: p.Partitions[i], Trim: v}
		total.Removable += v.Removable
		total.HeldBack += v.HeldBack
		total.LengthAfter += v.LengthAfter
		total.More = total.More || v.More
		for _, hb := range v.HeldBackBy {
			hb.Stream = r.Stream
			total.HeldBackBy = append(total.HeldBackBy, hb)
		}
	}
	d.Trim = total
	return d, nil
}

// previewPolicy returns the label and the policy of a trim preview: a
// policy without bounds previews removing what every group is done with.
func previewPolicy(policy trim.Policy) (string, trim.Policy) {
	label := describePolicy(policy)
	if policy.MaxLen == 0 && policy.MaxAge == 0 {
		policy = trim.Policy{MaxAge: time.Millisecond}
		label = "acknowledged"
	}
	if policy.Limit == 0 {
		policy.Limit = PreviewLimit
	}
	return label, policy
}

func trimView(label string, res trim.Result) TrimView {
	v := TrimView{Policy: label, Removable: res.Trimmed, Cutoff: res.Cutoff, PolicyCutoff: res.PolicyCutoff,
		HeldBack: res.HeldBack, HeldBackBy: []HeldBack{}, LengthAfter: res.Len, More: res.More}
	for _, hb := range res.HeldBackBy {
		v.HeldBackBy = append(v.HeldBackBy, HeldBack{Group: hb.Group, Until: hb.Until, Reason: string(hb.Reason)})
	}
	return v
}
