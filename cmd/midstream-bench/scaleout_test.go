package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestMasterCPU(t *testing.T) {
	info := "# CPU\r\nused_cpu_sys:1.250000\r\nused_cpu_user:2.500000\r\nused_cpu_sys_children:9.000000\r\nused_cpu_user_children:9.000000\r\nused_cpu_sys_main_thread:1.000000\r\n"
	got, err := masterCPU(info)
	if err != nil {
		t.Fatal(err)
	}
	if got != 3.75 {
		t.Fatalf("masterCPU = %v, want 3.75 (sys + user, not the children's or the main thread's)", got)
	}
	for _, bad := range []string{
		"",
		"# CPU\r\nused_cpu_sys:1.0\r\n",
		"# CPU\r\nused_cpu_user:1.0\r\n",
		"used_cpu_sys:x\r\nused_cpu_user:1\r\n",
		"used_cpu_sys:-1\r\nused_cpu_user:1\r\n",
	} {
		if _, err := masterCPU(bad); err == nil {
			t.Errorf("masterCPU(%q): no error", bad)
		}
	}
}

func TestMasterOfSlot(t *testing.T) {
	shards := []redis.ClusterShard{
		{Slots: []redis.SlotRange{{Start: 0, End: 5460}}, Nodes: []redis.Node{
			{IP: "10.0.0.2", Port: 7001, Role: "replica", Health: "online"},
			{IP: "10.0.0.1", Port: 7000, Role: "master", Health: "online"}}},
		{Slots: []redis.SlotRange{{Start: 5461, End: 10922}, {Start: 16000, End: 16383}}, Nodes: []redis.Node{
			{IP: "::1", Port: 7002, Role: "master", Health: "online"}}},
		// A failed master and no other: its slots are served by no one.
		{Slots: []redis.SlotRange{{Start: 10923, End: 15999}}, Nodes: []redis.Node{
			{IP: "10.0.0.3", Port: 7003, Role: "master", Health: "fail"}}},
	}
	ranges := masterRanges(shards)
	for slot, want := range map[int]string{0: "10.0.0.1:7000", 5460: "10.0.0.1:7000", 5461: "[::1]:7002", 10922: "[::1]:7002",
		10923: "", 15999: "", 16000: "[::1]:7002", 16383: "[::1]:7002", 16384: ""} {
		if got := masterOfSlot(ranges, slot); got != want {
			t.Errorf("masterOfSlot(%d) = %q, want %q", slot, got, want)
		}
	}
}

func TestMasterLoads(t *testing.T) {
	masters := []string{"a", "b"}
	before := []map[string]float64{{"a": 1, "b": 10}, {"a": 2, "b": 12}}
	after := []map[string]float64{{"a": 2, "b": 10.5}, {"a": 4, "b": 12.5}}
	loads, err := masterLoads(masters, before, after, map[string]int64{"a": 7})
	if err != nil {
		t.Fatal(err)
	}
	// a: 1 + 2 = 3 s, b: 0.5 + 0.5 = 1 s.
	want := []MasterLoad{{Addr: "a", Entries: 7, CPUSeconds: 3, CPUShare: 75}, {Addr: "b", CPUSeconds: 1, CPUShare: 25}}
	for i := range want {
		g, w := loads[i], want[i]
		if g.Addr != w.Addr || g.Entries != w.Entries || math.Abs(g.CPUSeconds-w.CPUSeconds) > 1e-9 || math.Abs(g.CPUShare-w.CPUShare) > 1e-9 {
			t.Errorf("load %d = %+v, want %+v", i, g, w)
		}
	}

	idle, err := masterLoads(masters, before[:1], before[:1], nil)
	if err != nil {
		t.Fatal(err)
	}
	if idle[0].CPUShare != 0 || idle[1].CPUShare != 0 {
		t.Errorf("no CPU time at all: shares %v and %v, want 0", idle[0].CPUShare, idle[1].CPUShare)
	}

	for name, tc := range map[string]struct{ before, after []map[string]float64 }{
		"missing master": {before: []map[string]float64{{"a": 1}}, after: []map[string]float64{{"a": 2, "b": 1}}},
		"went down":      {before: []map[string]float64{{"a": 1, "b": 5}}, after: []map[string]float64{{"a": 2, "b": 1}}},
		"unpaired":       {before: before, after: after[:1]},
	} {
		if _, err := masterLoads(masters, tc.before, tc.after, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestCompareScaleoutRows checks that -compare prints the rates of rows
// without a hand-written side.
func TestCompareScaleoutRows(t *testing.T) {
	dir := t.TempDir()
	oldPath, newPath := filepath.Join(dir, "old.json"), filepath.Join(dir, "new.json")
	if err := writeRows(oldPath, []Row{{Section: "scaleout", Name: "3 partition(s): x", Midstream: 1000, Partitions: 3}}); err != nil {
		t.Fatal(err)
	}
	if err := writeRows(newPath, []Row{{Section: "scaleout", Name: "3 partition(s): x", Midstream: 2000, Partitions: 3,
		Masters: []MasterLoad{{Addr: "a", CPUShare: 100}}}}); err != nil {
		t.Fatal(err)
	}
	out, err := os.CreateTemp(dir, "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := compareFiles(out, oldPath, newPath); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), "1000/s") || !strings.Contains(string(got), "2000/s") {
		t.Fatalf("compare output lacks both rates:\n%s", got)
	}
	rows, err := readRows(newPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Partitions != 3 || len(rows[0].Masters) != 1 || rows[0].Masters[0].CPUShare != 100 {
		t.Fatalf("rows read back: %+v", rows)
	}
}
