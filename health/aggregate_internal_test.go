package health

import (
	"reflect"
	"testing"
	"time"
)

func TestAggregatePartitions(t *testing.T) {
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	parts := []StreamHealth{
		{Stream: "o:{0}", Length: 5, LastID: "9-0", EntriesAdded: 7,
			DeadLetter: DeadLetterHealth{Key: "o:{0}:dlq", Length: 2},
			Delayed:    DelayedHealth{Key: "o:{0}:d", Size: 3, Overdue: 1, OldestOverdueAge: ms(40)},
			Groups: []GroupHealth{
				{Name: "billing", ConsumerCount: 2, Pending: 3, OldestPendingID: "5-0", OldestPendingAge: ms(500),
					OldestPendingIdle: ms(50), OldestPendingDeliveries: 2, LastDeliveredID: "8-0",
					EntriesRead: 6, EntriesReadKnown: true, Lag: 1, LagKnown: true,
					Consumers: []ConsumerHealth{
						{Name: "w1", Pending: 2, Idle: ms(30), Inactive: ms(30)},
						{Name: "w2", Pending: 1, Idle: ms(10), Inactive: -1},
					}},
				{Name: "audit", ConsumerCount: 0, EntriesRead: 7, EntriesReadKnown: true, LagKnown: true,
					Consumers: []ConsumerHealth{}},
			}},
		{Stream: "o:{1}", Length: 4, LastID: "12-0", EntriesAdded: 4,
			DeadLetter: DeadLetterHealth{Key: "o:{1}:dlq", Length: 1},
			Delayed:    DelayedHealth{Key: "o:{1}:d", Size: 1, Overdue: 1, OldestOverdueAge: ms(90)},
			Groups: []GroupHealth{
				{Name: "billing", ConsumerCount: 2, Pending: 1, OldestPendingID: "3-0", OldestPendingAge: ms(900),
					OldestPendingIdle: ms(70), OldestPendingDeliveries: 1, LastDeliveredID: "10-0",
					EntriesRead: 3, EntriesReadKnown: true, Lag: 1, LagKnown: false,
					Consumers: []ConsumerHealth{
						{Name: "w2", Pending: 1, Idle: ms(20), Inactive: ms(20)},
						{Name: "w3", Pending: 0, Idle: ms(5), Inactive: -1},
					}},
				{Name: "late", ConsumerCount: 1, Pending: 0, EntriesRead: 4, EntriesReadKnown: true, Lag: 0, LagKnown: true,
					Consumers: []ConsumerHealth{{Name: "w9", Idle: ms(1), Inactive: ms(1)}}},
			}},
		{Stream: "o:{2}", DeadLetter: DeadLetterHealth{Key: "o:{2}:dlq"}, Delayed: DelayedHealth{Key: "o:{2}:d"}},
	}
	// Partition 2 has no groups: no group is in every partition, so no
	// total lag or entries read is known.
	want := StreamHealth{Stream: "o", Length: 9, EntriesAdded: 11, Time: at,
		DeadLetter: DeadLetterHealth{Length: 3},
		Delayed:    DelayedHealth{Size: 4, Overdue: 2, OldestOverdueAge: ms(90)},
		Groups: []GroupHealth{
			{Name: "billing", ConsumerCount: 3, Pending: 4, OldestPendingID: "3-0", OldestPendingAge: ms(900),
				OldestPendingIdle: ms(70), OldestPendingDeliveries: 1,
				Consumers: []ConsumerHealth{
					{Name: "w1", Pending: 2, Idle: ms(30), Inactive: ms(30)},
					{Name: "w2", Pending: 2, Idle: ms(10), Inactive: ms(20)},
					{Name: "w3", Pending: 0, Idle: ms(5), Inactive: -1},
				}},
			{Name: "audit", Consumers: []ConsumerHealth{}},
			{Name: "late", ConsumerCount: 1, Consumers: []ConsumerHealth{{Name: "w9", Idle: ms(1), Inactive: ms(1)}}},
		}}
	if got := aggregate("o", at, parts, false); !reflect.DeepEqual(got, want) {
		t.Fatalf("aggregate\n got %+v\nwant %+v", got, want)
	}

	// With the groups in every partition, lag and entries read are sums,
	// known while every partition's is.
	parts[2].Groups = []GroupHealth{
		{Name: "billing", ConsumerCount: 1, EntriesRead: 0, EntriesReadKnown: true, Lag: 0, LagKnown: true},
		{Name: "audit", EntriesRead: 2, EntriesReadKnown: true, Lag: 5, LagKnown: true},
		{Name: "late", EntriesRead: 1, EntriesReadKnown: true, Lag: 3, LagKnown: true},
	}
	parts[1].Groups = append(parts[1].Groups, GroupHealth{Name: "audit", EntriesRead: 4, EntriesReadKnown: true, Lag: 2, LagKnown: true})
	parts[0].Groups = append(parts[0].Groups, GroupHealth{Name: "late", EntriesRead: 1, EntriesReadKnown: false, Lag: 4, LagKnown: true})
	got := aggregate("o", at, parts, true)
	type sums struct {
		name                         string
		lag, read, consumers         int64
		lagKnown, readKnown, noNames bool
	}
	var gotSums []sums
	for _, g := range got.Groups {
		gotSums = append(gotSums, sums{g.Name, g.Lag, g.EntriesRead, g.ConsumerCount, g.LagKnown, g.EntriesReadKnown, g.Consumers == nil})
	}
	wantSums := []sums{
		{"billing", 0, 9, 2, false, true, true}, // partition 1 cannot tell the lag
		{"audit", 7, 13, 0, true, true, true},
		{"late", 7, 0, 1, true, false, true}, // partition 0 cannot tell entries read
	}
	if !reflect.DeepEqual(gotSums, wantSums) {
		t.Fatalf("groups WithoutConsumers\n got %+v\nwant %+v", gotSums, wantSums)
	}
}

func TestAggregateNoPartitions(t *testing.T) {
	got := aggregate("o", time.Time{}, nil, false)
	if got.Stream != "o" || got.Length != 0 || got.Groups != nil {
		t.Fatalf("aggregate of nothing: %+v", got)
	}
}
