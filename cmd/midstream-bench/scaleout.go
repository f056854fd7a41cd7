package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/midstream-go/midstream"
	"github.com/midstream-go/midstream/cmd/midstream-bench/bench"
	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/internal/keys"
	"github.com/midstream-go/midstream/internal/redisserver"
	"github.com/midstream-go/midstream/producer"
)

// Scale-out over partitions: publish to and consume from a partitioned
// stream of 1, 3 and 6 partitions on a Redis Cluster, reporting the
// aggregate rates and how the masters share the work (their CPU time, from
// INFO CPU, and the entries each holds).

// scaleoutCounts are the partition counts measured.
var scaleoutCounts = []int{1, 3, 6}

// MasterLoad is one master's part of a scale-out row.
type MasterLoad struct {
	Addr string `json:"addr"`
	// Entries is the number of entries of one run in the partitions the
	// master serves.
	Entries int64 `json:"entries"`
	// CPUSeconds is the master's CPU time (used_cpu_sys + used_cpu_user
	// of INFO CPU) over the row's runs, every round together.
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUShare is CPUSeconds as a percentage of every master's.
	CPUShare float64 `json:"cpu_share_pct"`
}

// scaleCluster is the cluster a scale-out measurement runs on.
type scaleCluster struct {
	rdb     *redis.ClusterClient
	slots   []slotRange
	masters []string                 // addresses, sorted
	direct  map[string]*redis.Client // a client of each master, for INFO CPU
	where   string
	close   func()
}

// openCluster connects to the cluster at addrs (comma-separated seeds), or,
// if addrs is empty, starts a local one of three masters with replicas
// replicas each, without persistence.
func openCluster(ctx context.Context, addrs string, replicas int) (*scaleCluster, error) {
	c := &scaleCluster{close: func() {}}
	var seeds []string
	if addrs != "" {
		for _, a := range strings.Split(addrs, ",") {
			if a = strings.TrimSpace(a); a != "" {
				seeds = append(seeds, a)
			}
		}
		if len(seeds) == 0 {
			return nil, fmt.Errorf("-cluster %q names no address", addrs)
		}
		c.where = "at " + strings.Join(seeds, ",")
	} else {
		dir, err := os.MkdirTemp("", "midstream-bench-cluster-")
		if err != nil {
			return nil, err
		}
		rc, err := redisserver.StartCluster(redisserver.ClusterConfig{Dir: dir, Masters: 3, Replicas: replicas})
		if err != nil {
			return nil, errors.Join(err, os.RemoveAll(dir))
		}
		seeds = rc.Addrs()
		c.where = fmt.Sprintf("spawned: 3 masters, %d replica(s) each, no persistence", replicas)
		c.close = func() {
			if err := errors.Join(rc.Close(), os.RemoveAll(dir)); err != nil {
				log.Print(err)
			}
		}
	}
	// Maintenance notifications off: Redis 7.0 has none, and go-redis's
	// fallback after the failed handshake races with pinned connections.
	c.rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: seeds, PoolSize: 64,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
	closeSpawned := c.close
	c.close = func() {
		c.rdb.Close()
		for _, d := range c.direct {
			d.Close()
		}
		closeSpawned()
	}
	shards, err := c.rdb.ClusterShards(ctx).Result()
	if err != nil {
		c.close()
		return nil, fmt.Errorf("CLUSTER SHARDS (Redis 7.0 or later): %w", err)
	}
	c.slots = masterRanges(shards)
	c.direct = map[string]*redis.Client{}
	for _, r := range c.slots {
		if c.direct[r.master] == nil {
			c.direct[r.master] = redis.NewClient(&redis.Options{Addr: r.master,
				MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
			c.masters = append(c.masters, r.master)
		}
	}
	slices.Sort(c.masters)
	if len(c.masters) == 0 {
		c.close()
		return nil, errors.New("CLUSTER SHARDS lists no master serving slots")
	}
	return c, nil
}

// slotRange is a range of slots and the master serving it.
type slotRange struct {
	start, end int
	master     string // host:port
}

// masterRanges returns the slot ranges of shards (CLUSTER SHARDS) with
// their online master, leaving out ranges without one.
func masterRanges(shards []redis.ClusterShard) []slotRange {
	var out []slotRange
	for _, sh := range shards {
		master := ""
		for _, n := range sh.Nodes {
			if n.Role == "master" && n.Health == "online" {
				master = net.JoinHostPort(n.IP, strconv.FormatInt(n.Port, 10))
				break
			}
		}
		if master == "" {
			continue
		}
		for _, r := range sh.Slots {
			out = append(out, slotRange{start: int(r.Start), end: int(r.End), master: master})
		}
	}
	return out
}

// masterOfSlot returns the master serving slot in ranges, or "" if none
// does.
func masterOfSlot(ranges []slotRange, slot int) string {
	for _, r := range ranges {
		if slot >= r.start && slot <= r.end {
			return r.master
		}
	}
	return ""
}

// masterCPU returns a master's CPU time in seconds from its INFO CPU reply:
// used_cpu_sys plus used_cpu_user.
func masterCPU(info string) (float64, error) {
	var sys, user float64
	var found int
	for _, line := range strings.Split(info, "\n") {
		name, value, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (name != "used_cpu_sys" && name != "used_cpu_user") {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("INFO CPU: bad %s %q", name, value)
		}
		if name == "used_cpu_sys" {
			sys, found = v, found|1
		} else {
			user, found = v, found|2
		}
	}
	if found != 3 {
		return 0, errors.New("INFO CPU lacks used_cpu_sys or used_cpu_user")
	}
	return sys + user, nil
}

// cpu returns every master's CPU time in seconds.
func (c *scaleCluster) cpu(ctx context.Context) (map[string]float64, error) {
	out := make(map[string]float64, len(c.masters))
	for _, a := range c.masters {
		info, err := c.direct[a].Info(ctx, "cpu").Result()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a, err)
		}
		if out[a], err = masterCPU(info); err != nil {
			return nil, fmt.Errorf("%s: %w", a, err)
		}
	}
	return out, nil
}

// entries returns the number of entries each master holds in parts (the
// partition keys), by XLEN.
func (c *scaleCluster) entries(ctx context.Context, parts []string) (map[string]int64, error) {
	out := make(map[string]int64, len(c.masters))
	for _, k := range parts {
		m := masterOfSlot(c.slots, int(keys.Slot(k)))
		if m == "" {
			return nil, fmt.Errorf("no master serves %q", k)
		}
		n, err := c.rdb.XLen(ctx, k).Result()
		if err != nil {
			return nil, err
		}
		out[m] += n
	}
	return out, nil
}

// cleanup deletes every key whose name contains stream, on every master.
func (c *scaleCluster) cleanup(ctx context.Context, stream string) error {
	for _, a := range c.masters {
		var cursor uint64
		for {
			ks, next, err := c.direct[a].Scan(ctx, cursor, "*"+stream+"*", 1000).Result()
			if err != nil {
				return fmt.Errorf("%s: %w", a, err)
			}
			for _, k := range ks {
				if err := c.direct[a].Unlink(ctx, k).Err(); err != nil {
					return fmt.Errorf("%s: %w", a, err)
				}
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
	}
	return nil
}

// masterLoads returns each master's load over a row's runs: its CPU time
// (the sum over runs of after minus before), that time's share of all the
// masters', and entries. masters lists every master; a master missing from
// a snapshot, or whose CPU time went down (a restart), is an error.
func masterLoads(masters []string, before, after []map[string]float64, entries map[string]int64) ([]MasterLoad, error) {
	if len(before) != len(after) {
		return nil, fmt.Errorf("%d CPU snapshots before runs, %d after", len(before), len(after))
	}
	out := make([]MasterLoad, len(masters))
	total := 0.0
	for i, m := range masters {
		out[i] = MasterLoad{Addr: m, Entries: entries[m]}
		for r := range before {
			b, okb := before[r][m]
			a, oka := after[r][m]
			if !okb || !oka {
				return nil, fmt.Errorf("no CPU time of %s in run %d", m, r)
			}
			if a < b {
				return nil, fmt.Errorf("the CPU time of %s went down in run %d (%.3f s to %.3f s): restarted?", m, r, b, a)
			}
			out[i].CPUSeconds += a - b
		}
		total += out[i].CPUSeconds
	}
	if total > 0 {
		for i := range out {
			out[i].CPUShare = 100 * out[i].CPUSeconds / total
		}
	}
	return out, nil
}

// scaleRow accumulates the runs of one scale-out row.
type scaleRow struct {
	name          string
	rates, cpuNs  []float64
	wall          time.Duration
	before, after []map[string]float64
	entries       map[string]int64
}

// scaler runs the scale-out section.
type scaler struct {
	ctx    context.Context
	c      *scaleCluster
	n      int
	rounds int
	seq    int
}

func (s *scaler) stream(count int) string {
	s.seq++
	return fmt.Sprintf("bench:scaleout%d:%d:%d", count, time.Now().UnixNano(), s.seq)
}

// measure runs fn, with the masters' CPU time read before and after, into
// row.
func (s *scaler) measure(row *scaleRow, entries map[string]int64, fn func() (bench.Result, error)) {
	before, err := s.c.cpu(s.ctx)
	if err != nil {
		log.Fatal(err)
	}
	r, err := fn()
	if err != nil {
		log.Fatalf("scaleout %s: %v", row.name, err)
	}
	after, err := s.c.cpu(s.ctx)
	if err != nil {
		log.Fatal(err)
	}
	row.rates = append(row.rates, r.Rate())
	row.cpuNs = append(row.cpuNs, float64(r.CPUPerEntry()))
	row.wall += r.Elapsed
	row.before, row.after = append(row.before, before), append(row.after, after)
	row.entries = entries
}

// scalePlan is one publish run of a scale-out round and the consume run
// that drains it (none when consumers is 0).
type scalePlan struct {
	publish   string
	run       func(ctx context.Context, p *producer.Producer[bench.Event], n int) (bench.Result, error)
	consumers int
}

var scalePlans = []scalePlan{
	{"Publish, 16 goroutines", func(ctx context.Context, p *producer.Producer[bench.Event], n int) (bench.Result, error) {
		return bench.Publish(ctx, p, n, 16)
	}, 1},
	{"PublishBatch(100)", func(ctx context.Context, p *producer.Producer[bench.Event], n int) (bench.Result, error) {
		return bench.PublishBatch(ctx, p, n, 100)
	}, 2},
	{"Publish, 64 goroutines", func(ctx context.Context, p *producer.Producer[bench.Event], n int) (bench.Result, error) {
		return bench.Publish(ctx, p, n, 64)
	}, 0},
}

// scaleout measures, for each partition count, rounds runs of each plan:
// publishing n entries (Publish from 16 goroutines, coalescing on, then
// PublishBatch(100), then Publish from 64 goroutines), and consuming those
// of the first with one consumer, those of the second with two. Each plan
// runs on a new logical stream, deleted after.
func (s *scaler) scaleout() []Row {
	fmt.Printf("\nscaleout: a partitioned stream on the cluster (%d masters: %s), %d entries per run, field-reading handler;\n"+
		"  per master: CPU share (INFO CPU, used_cpu_sys+used_cpu_user, of all masters' CPU over the row's runs) and entries held\n",
		len(s.c.masters), strings.Join(s.c.masters, " "), s.n)
	var rows []Row
	for _, count := range scaleoutCounts {
		layout := midstream.Partitions{Count: count}
		var acc []*scaleRow
		pub := make([]*scaleRow, len(scalePlans))
		con := make([]*scaleRow, len(scalePlans))
		for i, pl := range scalePlans {
			pub[i] = &scaleRow{name: fmt.Sprintf("%d partition(s): %s", count, pl.publish)}
			acc = append(acc, pub[i])
			if pl.consumers > 0 {
				who := "1 consumer"
				if pl.consumers > 1 {
					who = strconv.Itoa(pl.consumers) + " consumers"
				}
				con[i] = &scaleRow{name: fmt.Sprintf("%d partition(s): consume, %s", count, who)}
				acc = append(acc, con[i])
			}
		}
		for range s.rounds {
			for i, pl := range scalePlans {
				stream := s.stream(count)
				p, err := producer.New[bench.Event](s.c.rdb, stream, producer.WithCodec[bench.Event](bench.Codec), producer.WithPartitions(layout))
				if err != nil {
					log.Fatal(err)
				}
				s.measure(pub[i], nil, func() (bench.Result, error) { return pl.run(s.ctx, p, s.n) })
				ents, err := s.c.entries(s.ctx, p.Partitions())
				if err != nil {
					log.Fatal(err)
				}
				pub[i].entries = ents
				if pl.consumers > 0 {
					s.measure(con[i], ents, func() (bench.Result, error) {
						return bench.Consume(s.ctx, s.c.rdb, stream, "g", s.n, pl.consumers, bench.ReadFields, consumer.WithPartitions(layout))
					})
				}
				if err := s.c.cleanup(s.ctx, stream); err != nil {
					log.Fatal(err)
				}
			}
		}
		for _, a := range acc {
			loads, err := masterLoads(s.c.masters, a.before, a.after, a.entries)
			if err != nil {
				log.Fatal(err)
			}
			row := Row{Section: "scaleout", Name: a.name, Partitions: count, Midstream: median(a.rates),
				MidstreamCPUNs: median(a.cpuNs), Masters: loads}
			var cpu float64
			for _, l := range loads {
				cpu += l.CPUSeconds
			}
			row.MastersCPUCores = cpu / a.wall.Seconds()
			rows = append(rows, row)
			var shares []string
			for _, l := range loads {
				shares = append(shares, fmt.Sprintf("%3.0f%% (%d)", l.CPUShare, l.Entries))
			}
			fmt.Printf("  %-40s %9.0f/s   client CPU/entry %5.2f µs   masters' CPU %.2f cores   per master %% (entries): %s\n",
				a.name, row.Midstream, row.MidstreamCPUNs/1e3, row.MastersCPUCores, strings.Join(shares, "  "))
		}
	}
	return rows
}
