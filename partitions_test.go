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
			if lo, hi := i*keys.SlotCount/n, (i+1)*keys.SlotCount/n; s < lo || s >= hi {
				t.Fatalf("n=%d: %s in slot %d, want [%d,%d)", n, k, s, lo, hi)
			}
		}
	}
	if got := midstream.DefaultPartitionKey("orders", 0, 1); got != "orders:{0}" {
		t.Fatalf("partition 0 of 1 = %q", got)
	}
	if got := midstream.DefaultPartitionKey("orders", 5, 3); got != "orders:{5}" {
		t.Fatalf("out of range = %q", got)
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
