package midstream

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/internal/keys"
)

// MaxPartitions bounds Partitions.Count. Each partition is a stream of its
// own, and each consumer of a partitioned stream keeps two blocked reads per
// partition (its entries and those redriven to its group; see the consumer
// package).
const MaxPartitions = 256

// ErrPartitionLayout reports a partitioned stream used with another layout
// than the one stored for it in Redis (a different Count or different
// partition keys), a partitioned stream used as a plain one, or a plain
// stream used as a partitioned one. It wraps ErrInvalidOption.
var ErrPartitionLayout = fmt.Errorf("%w: partition layout differs from the stored one", ErrInvalidOption)

// Partitions is the layout of a partitioned stream: one logical stream
// spread over Count streams, its partitions, each a key of its own in its own
// cluster slot, so that one logical stream's throughput and memory can exceed
// what one Redis node holds. producer.WithPartitions routes each entry to one
// partition (entries with the same partition key to the same one, in order);
// consumer.WithPartitions consumes every partition with one consumer group.
//
// The layout is stored in Redis the first time a producer or consumer uses
// it (in a hash at PartitionLayoutKey of the logical stream) and checked
// every time after: a producer or consumer with another Count or other keys
// fails with ErrPartitionLayout instead of splitting the stream differently,
// and so do producers and consumers without partitions on the logical name.
// Count cannot change on a live stream; to change it, drain the stream and
// move to a new logical name (or delete every partition and the layout key).
type Partitions struct {
	// Count is the number of partitions, from 1 to MaxPartitions.
	Count int
	// Key names partition i (0 ≤ i < Count) of stream. Nil means
	// DefaultPartitionKey. The names must differ from each other and from
	// the keys midstream keeps beside a stream (names holding ":midstream:"
	// or ending in ":dlq" are refused), and be valid stream names; to spread
	// the partitions over a cluster's masters they should hash to slots
	// owned by different masters.
	Key func(stream string, i int) string
}

// DefaultPartitionKey is partition i of n of stream: "<stream>:{<tag>}",
// where the hash tag is "<i>" when that puts the key in the middle half of
// the i-th n-th of the cluster's 16384 slots, or else "<i>.<k>" with the
// smallest k ≥ 1 that does. N partitions thus fall in N equal ranges of
// slots, away from their edges: one per master on a cluster whose N masters
// split the slots evenly (as redis-cli --cluster create does), and about
// evenly over the masters when N is a multiple of their number. A stream
// name holding '{' or '}' cannot use it: the first hash tag in a key decides
// its slot. Outside 0 ≤ i < n ≤ 16384 the tag is "<i>".
func DefaultPartitionKey(stream string, i, n int) string {
	base := strconv.Itoa(i)
	if n < 1 || n > keys.SlotCount || i < 0 || i >= n {
		return stream + ":{" + base + "}"
	}
	lo, hi := i*keys.SlotCount/n, (i+1)*keys.SlotCount/n
	if quarter := (hi - lo) / 4; quarter > 0 {
		lo, hi = lo+quarter, hi-quarter
	}
	tag := base
	// About (16384 / (hi-lo)) tries are expected; the bound only rules
	// out a loop that cannot end.
	for k := 1; k < 1<<22; k++ {
		if s := int(keys.Slot("{" + tag + "}")); s >= lo && s < hi {
			break
		}
		tag = base + "." + strconv.Itoa(k)
	}
	return stream + ":{" + tag + "}"
}

// Keys returns the partitions of stream, in order, checking the layout:
// Count in range, a stream name without '{' or '}' unless Key is set, and
// Key returning distinct valid stream names that are not midstream's own
// keys (see Partitions.Key). A bad layout, or a Key that panics, fails with
// an error wrapping ErrInvalidOption or ErrInvalidStream.
func (p Partitions) Keys(stream string) (_ []string, err error) {
	if err := CheckStream(stream); err != nil {
		return nil, err
	}
	if p.Count < 1 || p.Count > MaxPartitions {
		return nil, fmt.Errorf("%w: partition count %d out of range [1, %d]", ErrInvalidOption, p.Count, MaxPartitions)
	}
	if p.Key == nil && strings.ContainsAny(stream, "{}") {
		return nil, fmt.Errorf("%w: stream %q holds '{' or '}', so its default partition keys would not spread over cluster slots: name them with Partitions.Key", ErrInvalidOption, stream)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: partition key func of %q panicked: %v", ErrInvalidOption, stream, r)
		}
	}()
	out := make([]string, p.Count)
	seen := make(map[string]int, p.Count)
	for i := range out {
		k := p.key(stream, i)
		if err := CheckStream(k); err != nil {
			return nil, fmt.Errorf("partition %d of %q: %w", i, stream, err)
		}
		if j, dup := seen[k]; dup {
			return nil, fmt.Errorf("%w: partitions %d and %d of %q are both %q", ErrInvalidOption, j, i, stream, k)
		}
		if k == stream || strings.Contains(k, ":midstream:") || strings.HasSuffix(k, ":dlq") {
			return nil, fmt.Errorf("%w: partition %d of %q is %q: the logical stream's own name, or a name midstream keeps for itself (holding \":midstream:\" or ending in \":dlq\")", ErrInvalidOption, i, stream, k)
		}
		seen[k] = i
		out[i] = k
	}
	return out, nil
}

func (p Partitions) key(stream string, i int) string {
	if p.Key != nil {
		return p.Key(stream, i)
	}
	return DefaultPartitionKey(stream, i, p.Count)
}

// PartitionOf returns the partition (0 ≤ p < n) of the entries published
// with partition key key: the 32-bit FNV-1a hash of key, modulo n. Every
// entry with the same key goes to the same partition while n stays the same.
// An n below 2 gives 0.
func PartitionOf(key string, n int) int {
	if n < 2 {
		return 0
	}
	h := uint32(2166136261) // FNV-1a, 32 bits
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

// PartitionLayoutKey is the hash where the layout of the partitioned stream
// stream is stored: field "count" holds Count, fields "0" … "<Count-1>"
// the partition keys. Deleting it (once every partition is drained and
// deleted) lets the name be used again, with any layout or none.
func PartitionLayoutKey(stream string) string { return stream + ":midstream:partitions" }

// layoutScript stores the layout unless one is stored, and returns the
// stored one.
var layoutScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], unpack(ARGV))
end
return redis.call('HGETALL', KEYS[1])
`)

// EnsurePartitions stores the layout of the partitioned stream stream in
// Redis unless one is stored already, and returns its partition keys.
// Producers and consumers with WithPartitions call it before their first
// command, and again from time to time. It fails with an error wrapping
// ErrPartitionLayout, naming both, when the stored layout has another count
// or other keys, or when the logical name holds a stream of its own (written
// without partitions: its entries would be left behind). A Redis user not
// allowed to store the layout (NOPERM) only reads and compares it, and
// succeeds when none is stored.
func EnsurePartitions(ctx context.Context, client redis.UniversalClient, stream string, p Partitions) ([]string, error) {
	ks, err := p.Keys(stream)
	if err != nil {
		return nil, err
	}
	if n, err := client.Exists(ctx, stream).Result(); err != nil && !redis.HasErrorPrefix(err, "NOPERM") {
		return nil, fmt.Errorf("midstream: partition layout of %q: %w", stream, err)
	} else if n > 0 {
		return nil, fmt.Errorf("%w: %q is partitioned but a key of that name exists (written without partitions?): drain and delete it, or pick another name", ErrPartitionLayout, stream)
	}
	args := make([]any, 0, 2+2*len(ks))
	args = append(args, "count", strconv.Itoa(len(ks)))
	for i, k := range ks {
		args = append(args, strconv.Itoa(i), k)
	}
	stored, err := layoutScript.Run(ctx, client, []string{PartitionLayoutKey(stream)}, args...).StringSlice()
	if err != nil && redis.HasErrorPrefix(err, "NOPERM") {
		read, rerr := StoredPartitions(ctx, client, stream)
		switch {
		case rerr != nil:
			return nil, fmt.Errorf("midstream: partition layout of %q: %w (reading it: %w)", stream, err, rerr)
		case read == nil:
			return ks, nil
		}
		stored = append(stored[:0], "count", strconv.Itoa(len(read)))
		for i, k := range read {
			stored = append(stored, strconv.Itoa(i), k)
		}
	} else if err != nil {
		return nil, fmt.Errorf("midstream: partition layout of %q: %w", stream, err)
	}
	got := make(map[string]string, len(stored)/2)
	for i := 0; i+1 < len(stored); i += 2 {
		got[stored[i]] = stored[i+1]
	}
	if got["count"] != strconv.Itoa(len(ks)) {
		return nil, fmt.Errorf("%w: %q is stored with %s partitions, not %d (the count cannot change on a live stream: drain it and use a new name)", ErrPartitionLayout, stream, quoteOr(got["count"]), len(ks))
	}
	for i, k := range ks {
		if s := got[strconv.Itoa(i)]; s != k {
			return nil, fmt.Errorf("%w: partition %d of %q is stored as %s, not %q", ErrPartitionLayout, i, stream, quoteOr(s), k)
		}
	}
	return ks, nil
}

// StoredPartitions reads the layout stored for stream: its partition keys,
// or nil and no error when stream is not partitioned (no layout stored).
func StoredPartitions(ctx context.Context, client redis.UniversalClient, stream string) ([]string, error) {
	m, err := client.HGetAll(ctx, PartitionLayoutKey(stream)).Result()
	if err != nil {
		return nil, fmt.Errorf("midstream: partition layout of %q: %w", stream, err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	n, err := strconv.Atoi(m["count"])
	if err != nil || n < 1 || n > MaxPartitions {
		return nil, fmt.Errorf("%w: %q holds a bad count %s", ErrPartitionLayout, PartitionLayoutKey(stream), quoteOr(m["count"]))
	}
	out := make([]string, n)
	for i := range out {
		k, ok := m[strconv.Itoa(i)]
		if !ok {
			return nil, fmt.Errorf("%w: %q has no partition %d", ErrPartitionLayout, PartitionLayoutKey(stream), i)
		}
		out[i] = k
	}
	return out, nil
}

// CheckUnpartitioned returns an error wrapping ErrPartitionLayout when
// stream is the logical name of a partitioned stream (a layout is stored for
// it), which a producer or consumer without partitions must not use: its
// entries would go where no partitioned consumer reads, or it would read
// nothing. Producers and consumers without WithPartitions call it before
// their first command (running producers every 30 s too). An error reading the layout is returned as it is.
func CheckUnpartitioned(ctx context.Context, client redis.UniversalClient, stream string) error {
	n, err := client.Exists(ctx, PartitionLayoutKey(stream)).Result()
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%w: %q is a partitioned stream: use it with WithPartitions (its layout is in %q)", ErrPartitionLayout, stream, PartitionLayoutKey(stream))
	}
	return nil
}

func quoteOr(s string) string {
	if s == "" {
		return "no"
	}
	return strconv.Quote(s)
}
