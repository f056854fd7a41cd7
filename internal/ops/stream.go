package ops

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/health"
	"github.com/midstream-go/midstream/trim"
)

// StreamDetail is one stream's health, consumers included, and what a
// safe trim would do to it now.
type StreamDetail struct {
	Health health.StreamHealth `json:"health"`
	Trim   TrimView            `json:"trim"`
	// Partitions are, for a partitioned stream (PartitionedStreamInfo),
	// the details of its partitions, in order; Health and Trim are then
	// their totals. Absent for a stream.
	Partitions []StreamDetail `json:"partitions,omitempty"`
}

// TrimView is a trim.Preview: what a safe pass of the policy would remove
// now, and which groups hold entries back.
type TrimView struct {
	// Policy describes the policy previewed: "max_len=N", "max_age=D",
	// both, or "acknowledged" for the default preview (everything every
	// group is done with).
	Policy string `json:"policy"`
	// Removable is how many entries the pass would delete, at most the
	// preview's limit (PreviewLimit); More says there are more.
	Removable int64 `json:"removable"`
	// Cutoff is the effective cutoff: entries below it would go.
	Cutoff string `json:"cutoff"`
	// PolicyCutoff is where the policy alone would cut.
	PolicyCutoff string `json:"policy_cutoff"`
	// HeldBack counts the entries below PolicyCutoff kept because a group
	// needs them.
	HeldBack int64 `json:"held_back"`
	// HeldBackBy names the groups that hold entries back, oldest need
	// first.
	HeldBackBy []HeldBack `json:"held_back_by"`
	// LengthAfter is the length the pass would leave.
	LengthAfter int64 `json:"length_after"`
	// More reports that the pass would stop at its limit with more to go.
	More bool `json:"more"`
}

// PreviewLimit is the work limit of StreamInfo's trim preview: the preview
// reads at most this many entries inside Redis (about 15 ms on Redis 7.0),
// so a page that refreshes it stays cheap.
const PreviewLimit = 10_000

// HeldBack is a group holding entries back from a trim.
type HeldBack struct {
	// Stream is, in the total of a partitioned stream's previews, the
	// partition the group holds entries back in; absent otherwise.
	Stream string `json:"stream,omitempty"`
	Group  string `json:"group"`
	// Until is the oldest entry the group needs.
	Until string `json:"until"`
	// Reason is "pending" or "undelivered".
	Reason string `json:"reason"`
}

// StreamInfo returns stream's health with its consumers (health.Snapshot
// with opts) and a trim preview of policy (trim.Preview; its limit
// PreviewLimit unless set); a policy without bounds previews removing
// everything every group is done with.
func StreamInfo(ctx context.Context, client redis.UniversalClient, stream string, policy trim.Policy, opts ...health.Option) (StreamDetail, error) {
	h, err := health.Snapshot(ctx, client, stream, opts...)
	if err != nil {
		return StreamDetail{}, err
	}
	label, policy := previewPolicy(policy)
	res, err := trim.Preview(ctx, client, stream, policy)
	if err != nil {
		return StreamDetail{}, err
	}
	return StreamDetail{Health: h, Trim: trimView(label, res)}, nil
}

func describePolicy(p trim.Policy) string {
	var s string
	if p.MaxLen > 0 {
		s = "max_len=" + itoa(p.MaxLen)
	}
	if p.MaxAge > 0 {
		if s != "" {
			s += ","
		}
		s += "max_age=" + p.MaxAge.String()
	}
	return s
}
