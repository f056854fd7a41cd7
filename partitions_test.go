package midstream_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/internal/keys"
)

func TestDefaultPartitionKeySpreadsOverSlots(t *testing.T) {
	for _, n := range []int{1, 2, 3, 6, 7, 64, midstream.MaxPartitions} {
		ks, err := midstream.Partitions{Count: n}.Keys("orders")
		if err != nil {
			t.Fatal(err)
		}
		for i, k := range ks {
			s := int(keys.Slot(k))
			lo, hi := i*keys.SlotCount/n, (i+1)*keys.SlotCount/n
			q := (hi - lo) / 4
			if s < lo+q || s >= hi-q {
				t.Fatalf("n=%d: %s in slot %d, want the middle half of [%d,%d)", n, k, s, lo, hi)
			}
		}
	}
	if got := midstream.DefaultPartitionKey("orders", 1, 3); got != "orders:{1.4}" {
		t.Fatalf("partition 1 of 3 = %q", got)
	}
	for _, c := range [][2]int{{5, 3}, {-1, 3}, {0, 0}, {0, 20000}} {
		if got, want := midstream.DefaultPartitionKey("orders", c[0], c[1]), fmt.Sprintf("orders:{%d}", c[0]); got != want {
			t.Fatalf("partition %d of %d = %q, want %q", c[0], c[1], got, want)
		}
	}
	// 16384 partitions: one slot each, every one found.
	for _, i := range []int{0, 1, 8191, 16383} {
		if s := keys.Slot(midstream.DefaultPartitionKey("orders", i, keys.SlotCount)); int(s) != i {
			t.Fatalf("partition %d of 16384 in slot %d", i, s)
		}
	}
}

func TestPartitionsKeysRejectsBadLayouts(t *testing.T) {
	for _, c := range []struct {
		name   string
		stream string
		p      midstream.Partitions
	}{
		{"zero", "orders", midstream.Partitions{}},
		{"negative", "orders", midstream.Partitions{Count: -1}},
		{"too many", "orders", midstream.Partitions{Count: midstream.MaxPartitions + 1}},
		{"hash tag", "{orders}", midstream.Partitions{Count: 2}},
		{"empty braces", "x{}", midstream.Partitions{Count: 2}},
		{"closing brace", "x}y", midstream.Partitions{Count: 2}},
		{"layout key", "orders", midstream.Partitions{Count: 1, Key: func(s string, i int) string { return midstream.PartitionLayoutKey(s) }}},
		{"dead-letter name", "orders", midstream.Partitions{Count: 2, Key: func(s string, i int) string { return fmt.Sprintf("{%s-%d}:dlq", s, i) }}},
		{"bookkeeping name", "orders", midstream.Partitions{Count: 1, Key: func(s string, i int) string { return s + ":midstream:delay" }}},
		{"panic", "orders", midstream.Partitions{Count: 2, Key: func(s string, i int) string { panic("boom") }}},
		{"empty stream", "", midstream.Partitions{Count: 2}},
		{"duplicate", "orders", midstream.Partitions{Count: 2, Key: func(s string, i int) string { return s + ":x" }}},
		{"empty key", "orders", midstream.Partitions{Count: 2, Key: func(s string, i int) string { return "" }}},
		{"own name", "orders", midstream.Partitions{Count: 1, Key: func(s string, i int) string { return s }}},
	} {
		_, err := c.p.Keys(c.stream)
		if !errors.Is(err, midstream.ErrInvalidOption) && !errors.Is(err, midstream.ErrInvalidStream) {
			t.Errorf("%s: err = %v", c.name, err)
		}
	}
	ks, err := midstream.Partitions{Count: 2, Key: func(s string, i int) string { return fmt.Sprintf("{%s-%d}", s, i) }}.Keys("{orders}")
	if err != nil || ks[1] != "{{orders}-1}" {
		t.Fatalf("custom keys: %v %v", ks, err)
	}
}

func TestPartitionOf(t *testing.T) {
	if midstream.PartitionOf("x", 0) != 0 || midstream.PartitionOf("x", 1) != 0 {
		t.Fatal("n < 2 must give 0")
	}
	counts := make([]int, 8)
	for i := 0; i < 8000; i++ {
		p := midstream.PartitionOf(fmt.Sprint("customer-", i), 8)
		if p != midstream.PartitionOf(fmt.Sprint("customer-", i), 8) {
			t.Fatal("not stable")
		}
		counts[p]++
	}
	for p, c := range counts {
		if c < 800 || c > 1200 {
			t.Fatalf("partition %d got %d of 8000 keys", p, c)
		}
	}
}
