package trim

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

func TestRotation(t *testing.T) {
	mr := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer c.Close()
	ctx := context.Background()

	r := rotation{client: c, names: []string{"a", "b", "c", "d", "e"}}
	for i, want := range [][]string{{"a", "b"}, {"c", "d"}, {"e"}, {"a", "b"}} {
		got, end, err := r.next(ctx, 2)
		if err != nil || !slices.Equal(got, want) || end != (i == 2) {
			t.Fatalf("tick %d: %v %v %v, want %v", i, got, end, err, want)
		}
	}

	for i := range 5 {
		c.XAdd(ctx, &redis.XAddArgs{Stream: fmt.Sprintf("p:%d", i), Values: []string{"k", "v"}})
	}
	c.Set(ctx, "p:string", "x", 0)
	r = rotation{client: c, names: []string{"p:0", "x"}, pattern: "p:*"}
	var all []string
	for tick := 0; ; tick++ {
		got, end, err := r.next(ctx, 3)
		if err != nil || len(got) > 3 {
			t.Fatalf("tick %d: %v %v", tick, got, err)
		}
		if len(slices.Compact(slices.Sorted(slices.Values(got)))) != len(got) {
			t.Fatalf("tick %d visits a stream twice: %v", tick, got)
		}
		all = append(all, got...)
		if end {
			break
		}
		if tick == 10 {
			t.Fatal("the cycle never ends")
		}
	}
	// Every stream once, a name SCAN also finds at most twice (never twice
	// in one tick), and no other key.
	slices.Sort(all)
	if set := slices.Compact(slices.Clone(all)); !slices.Equal(set, []string{"p:0", "p:1", "p:2", "p:3", "p:4", "x"}) || len(all) > 7 {
		t.Fatalf("one cycle visited %v", all)
	}
	// The next cycle starts over with the names.
	if got, _, _ := r.next(ctx, 2); !slices.Equal(got, []string{"p:0", "x"}) {
		t.Fatalf("next cycle: %v", got)
	}
}
