package health

import "testing"

func TestHealthParseGroup(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply any
		want  GroupHealth
	}{
		{"RESP3 map", map[any]any{"name": "g", "consumers": int64(2), "pending": int64(3), "last-delivered-id": "5-0", "entries-read": int64(5), "lag": int64(4)},
			GroupHealth{Name: "g", ConsumerCount: 2, Pending: 3, LastDeliveredID: "5-0", Lag: 4, LagKnown: true}},
		{"RESP2 list", []any{"name", "g", "consumers", int64(1), "pending", int64(0), "last-delivered-id", "0-0", "lag", int64(0)},
			GroupHealth{Name: "g", ConsumerCount: 1, LastDeliveredID: "0-0", LagKnown: true}},
		{"null lag", map[any]any{"name": "g", "lag": nil, "entries-read": nil},
			GroupHealth{Name: "g"}},
		{"no lag (Redis 6.2)", []any{"name", "g", "consumers", int64(0), "pending", int64(0), "last-delivered-id", "1-0"},
			GroupHealth{Name: "g", LastDeliveredID: "1-0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseGroup(tc.reply)
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != tc.want.Name || got.ConsumerCount != tc.want.ConsumerCount || got.Pending != tc.want.Pending ||
				got.LastDeliveredID != tc.want.LastDeliveredID || got.Lag != tc.want.Lag || got.LagKnown != tc.want.LagKnown {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	for _, bad := range []any{"x", []any{"consumers", int64(1)}, map[any]any{"name": "g", "pending": "many"}} {
		if _, err := parseGroup(bad); err == nil {
			t.Errorf("parseGroup(%v) succeeded", bad)
		}
	}
}
