// Command midstream-bench measures midstream against the strongest loops a
// competent engineer writes by hand with go-redis, doing the same work in the
// same process against one Redis server, and prints for each pair the rates,
// the ratio midstream/hand-written, and the client's CPU time and heap
// allocations per entry.
//
//	go run ./cmd/midstream-bench                 # spawns its own redis-server
//	go run ./cmd/midstream-bench -addr host:port # or REDIS_URL=redis://…
//	go run ./cmd/midstream-bench -json new.json  # also write the rows as JSON
//	go run ./cmd/midstream-bench -compare old.json new.json
//	go run ./cmd/midstream-bench -only consume -profile 'consume 1' -cpuprofile cpu.out -memprofile mem.out
//	go run ./cmd/midstream-bench -only scaleout  # spawns a local Redis Cluster
//	go run ./cmd/midstream-bench -only scaleout -cluster host:port,host:port
//
// The server is spawned without persistence (like a cache-tier Redis) on a
// free loopback port; entries are six flat fields of about 100 bytes, as
// midstream's default codec for structs writes them. Consume and end-to-end
// rows run two handlers: one reading the fields in place (a raw HandlerFunc
// against a loop reading go-redis's reply) and a typed one (consumer.Typed
// against a loop decoding the same struct by hand).
//
// The scaleout section (not run by default) publishes to and consumes from a
// partitioned stream of 1, 3 and 6 partitions on a Redis Cluster (-cluster,
// else a spawned local one of three masters with a replica each) and prints
// the aggregate rates with each master's share of the masters' CPU time and
// of the entries.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/cmd/midstream-bench/bench"
	"github.com/midstream-go/midstream/internal/redisserver"
	"github.com/midstream-go/midstream/producer"
)

func main() {
	addr := flag.String("addr", "", "Redis address (default: REDIS_URL, else a spawned redis-server)")
	consumeN := flag.Int("consume", 200_000, "entries each consumer run drains")
	publishN := flag.Int("publish", 100_000, "entries per publish run")
	seqN := flag.Int("seq", 30_000, "entries per sequential (one-at-a-time) publish run")
	rounds := flag.Int("rounds", 3, "runs of each measurement; the median is reported")
	flowDur := flag.Duration("flow", 3*time.Second, "duration of each end-to-end run")
	only := flag.String("only", "consume,reclaim,publish,latency,sustained,observability,idempotent,delayed", "sections to run")
	jsonOut := flag.String("json", "", "also write every row to this file as JSON")
	profileRow := flag.String("profile", "", "profile midstream's side of the first run of the first row whose name contains this")
	cpuProfile := flag.String("cpuprofile", "", "with -profile: write the CPU profile to this file")
	memProfile := flag.String("memprofile", "", "with -profile: write the allocation profile to this file")
	clusterAddrs := flag.String("cluster", "", "scaleout: comma-separated addresses of a Redis Cluster (default: a spawned local one); its keys named after the bench's streams are deleted")
	clusterReplicas := flag.Int("cluster-replicas", 1, "scaleout: replicas of each master of the spawned cluster")
	scaleN := flag.Int("scaleout", 100_000, "scaleout: entries per publish run (each consume run drains them)")
	compare := flag.Bool("compare", false, "compare two JSON files of rows (arguments: old new) instead of measuring")
	flag.Parse()
	if *compare {
		if flag.NArg() != 2 {
			log.Fatal("-compare takes two files: old.json new.json")
		}
		if err := compareFiles(os.Stdout, flag.Arg(0), flag.Arg(1)); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *rounds < 1 || *rounds > 100 {
		log.Fatal("-rounds must be between 1 and 100")
	}
	for _, n := range []int{*consumeN, *publishN, *seqN, *scaleN} {
		if n < 1 || n > 100_000_000 {
			log.Fatal("-consume, -publish, -seq and -scaleout must be between 1 and 100,000,000")
		}
	}
	if *clusterReplicas < 0 || *clusterReplicas > 5 {
		log.Fatal("-cluster-replicas must be between 0 and 5")
	}
	if *flowDur < 100*time.Millisecond || *flowDur > time.Hour {
		log.Fatal("-flow must be between 100ms and 1h")
	}
	if (*cpuProfile != "" || *memProfile != "") && *profileRow == "" {
		log.Fatal("-cpuprofile and -memprofile need -profile ROW")
	}

	sections := map[string]bool{}
	single := false // a section needs the single server
	for _, name := range strings.Split(*only, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(knownSections, name) {
			log.Fatalf("-only: unknown section %q (sections: %s)", name, strings.Join(knownSections, ","))
		}
		sections[name] = true
		single = single || name != "scaleout"
	}

	if !sections["scaleout"] {
		flag.Visit(func(f *flag.Flag) {
			if f.Name == "cluster" || f.Name == "cluster-replicas" || f.Name == "scaleout" {
				log.Fatalf("-%s is for the scaleout section: add it to -only", f.Name)
			}
		})
	}

	ctx := context.Background()
	b := &runner{ctx: ctx, rounds: *rounds, profileRow: *profileRow, cpuProfile: *cpuProfile, memProfile: *memProfile}
	if single {
		rdb, where, cleanup, err := connect(*addr)
		if err != nil {
			log.Fatal(err)
		}
		defer cleanup()
		info := rdb.Info(ctx, "server").Val()
		fmt.Printf("midstream-bench: %s, %d CPUs, %s; Redis %s (%s)\n", runtime.Version(), runtime.NumCPU(), cpuModel(), field(info, "redis_version"), where)
		b.rdb = rdb
	}
	if sections["consume"] {
		b.consume(*consumeN)
	}
	if sections["reclaim"] {
		b.reclaim(*consumeN / 4)
	}
	if sections["publish"] {
		b.publish(*seqN, *publishN)
	}
	if sections["latency"] {
		b.latency(*flowDur)
	}
	if sections["sustained"] {
		b.sustained(*flowDur)
	}
	if sections["observability"] {
		b.observability(*consumeN, *seqN, *publishN)
	}
	if sections["idempotent"] {
		b.idempotent(*seqN, *publishN)
	}
	if sections["delayed"] {
		b.delayed(*flowDur)
	}
	if sections["scaleout"] {
		c, err := openCluster(ctx, *clusterAddrs, *clusterReplicas)
		if err != nil {
			log.Fatal(err)
		}
		info := c.direct[c.masters[0]].Info(ctx, "server").Val()
		fmt.Printf("midstream-bench: %s, %d CPUs, %s; Redis Cluster %s (%s)\n", runtime.Version(), runtime.NumCPU(), cpuModel(), field(info, "redis_version"), c.where)
		s := &scaler{ctx: ctx, c: c, n: *scaleN, rounds: *rounds}
		b.rows = append(b.rows, s.scaleout()...)
		c.close()
	}
	if *jsonOut != "" {
		if err := writeRows(*jsonOut, b.rows); err != nil {
			log.Fatal(err)
		}
	}
}

// knownSections are the sections -only takes.
var knownSections = []string{"consume", "reclaim", "publish", "latency", "sustained", "observability", "idempotent", "delayed", "scaleout"}

type runner struct {
	ctx    context.Context
	rdb    *redis.Client
	rounds int
	seq    int
	rows   []Row

	profileRow, cpuProfile, memProfile string
	profiled                           bool
}

func (b *runner) key(name string) string {
	b.seq++
	return fmt.Sprintf("bench:%s:%d:%d", name, time.Now().UnixNano(), b.seq)
}

// Row is one line of the bench's output, as -json writes it.
type Row struct {
	Section string `json:"section"`
	Name    string `json:"name"`
	// Rates in entries per second (medians); for end-to-end rows, the
	// rate achieved.
	Raw       float64 `json:"raw_per_sec"`
	Midstream float64 `json:"midstream_per_sec"`
	Ratio     float64 `json:"ratio"`
	// Client CPU time and heap allocations per entry (medians).
	RawCPUNs        float64 `json:"raw_cpu_ns_per_entry"`
	MidstreamCPUNs  float64 `json:"midstream_cpu_ns_per_entry"`
	RawAllocs       float64 `json:"raw_allocs_per_entry,omitempty"`
	MidstreamAllocs float64 `json:"midstream_allocs_per_entry,omitempty"`
	RawP50Ms        float64 `json:"raw_p50_ms,omitempty"`
	RawP99Ms        float64 `json:"raw_p99_ms,omitempty"`
	MidstreamP50Ms  float64 `json:"midstream_p50_ms,omitempty"`
	MidstreamP99Ms  float64 `json:"midstream_p99_ms,omitempty"`
	// Scale-out rows (section "scaleout"): the partition count, the
	// masters' CPU time per second of the runs (in cores), and each
	// master's load; the rate is Midstream, its client CPU per entry
	// MidstreamCPUNs (no hand-written side: Raw and Ratio are 0).
	Partitions      int          `json:"partitions,omitempty"`
	MastersCPUCores float64      `json:"masters_cpu_cores,omitempty"`
	Masters         []MasterLoad `json:"masters,omitempty"`
}

func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// compare runs raw and ms alternately, rounds times each, each on a stream
// prepare returns (a new key if prepare is nil), and records the row of
// their medians.
func (b *runner) compare(section, name string, prepare func() string, raw, ms func(stream string) (bench.Result, error)) Row {
	if prepare == nil {
		prepare = func() string { return b.key(section) }
	}
	var rr, mr [3][]float64 // rate, CPU per entry, allocations per entry
	stop := func() {}
	run := func(fn func(string) (bench.Result, error), into *[3][]float64, profile bool) {
		stream := prepare()
		if profile {
			stop = b.startProfile(section + " " + name)
		}
		r, err := fn(stream)
		stop()
		stop = func() {}
		if err != nil {
			log.Fatal(err)
		}
		into[0] = append(into[0], r.Rate())
		into[1] = append(into[1], float64(r.CPUPerEntry()))
		into[2] = append(into[2], r.AllocsPerEntry())
		b.rdb.FlushDB(b.ctx) // each run starts from an empty server
	}
	for range b.rounds {
		run(raw, &rr, false)
		run(ms, &mr, true)
	}
	row := Row{Section: section, Name: name, Raw: median(rr[0]), Midstream: median(mr[0]),
		RawCPUNs: median(rr[1]), MidstreamCPUNs: median(mr[1]), RawAllocs: median(rr[2]), MidstreamAllocs: median(mr[2])}
	row.Ratio = row.Midstream / row.Raw
	b.rows = append(b.rows, row)
	fmt.Printf("  %-50s raw %8.0f/s  midstream %8.0f/s  ratio %.2f   CPU/entry %5.2f vs %5.2f µs   allocs/entry %5.1f vs %5.1f\n",
		name, row.Raw, row.Midstream, row.Ratio, row.RawCPUNs/1e3, row.MidstreamCPUNs/1e3, row.RawAllocs, row.MidstreamAllocs)
	return row
}

// startProfile starts the CPU profile if row is the first to match
// -profile, and returns what stops it and writes the allocation profile.
func (b *runner) startProfile(row string) func() {
	if b.profileRow == "" || b.profiled || !strings.Contains(row, b.profileRow) {
		return func() {}
	}
	b.profiled = true
	fmt.Printf("  (profiling midstream's side of %q)\n", row)
	var cpu *os.File
	if b.cpuProfile != "" {
		f, err := os.Create(b.cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		cpu = f
	}
	return func() {
		if cpu != nil {
			pprof.StopCPUProfile()
			cpu.Close()
		}
		if b.memProfile != "" {
			f, err := os.Create(b.memProfile)
			if err != nil {
				log.Fatal(err)
			}
			if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
				log.Fatal(err)
			}
			f.Close()
		}
	}
}

var handlers = []bench.Handler{bench.ReadFields, bench.Decode}

func (b *runner) consume(n int) {
	fmt.Printf("\nconsume: drain %d pre-filled entries; hand-written loop: XREADGROUP COUNT 100, one XACK per batch\n", n)
	prefill := func() string {
		stream := b.key("consume")
		if err := bench.Fill(b.ctx, b.rdb, stream, n); err != nil {
			log.Fatal(err)
		}
		return stream
	}
	for _, consumers := range []int{1, 4} {
		for _, h := range handlers {
			b.compare("consume", fmt.Sprintf("%d consumer(s), %s", consumers, h), prefill, func(stream string) (bench.Result, error) {
				return bench.RawConsume(b.ctx, b.rdb, stream, "raw", n, consumers, h)
			}, func(stream string) (bench.Result, error) {
				return bench.Consume(b.ctx, b.rdb, stream, "ms", n, consumers, h)
			})
		}
	}
}

func (b *runner) reclaim(n int) {
	fmt.Printf("\nreclaim: take over %d entries a crashed consumer left pending, one consumer, field-reading handler\n", n)
	orphan := func() string {
		stream := b.key("reclaim")
		if err := bench.Orphan(b.ctx, b.rdb, stream, "g", n); err != nil {
			log.Fatal(err)
		}
		return stream
	}
	b.compare("reclaim", "XAUTOCLAIM 100 + XACK vs reclaim loop", orphan, func(stream string) (bench.Result, error) {
		return bench.RawReclaim(b.ctx, b.rdb, stream, "g", n)
	}, func(stream string) (bench.Result, error) {
		return bench.Reclaim(b.ctx, b.rdb, stream, "g", n)
	})
}

func (b *runner) producer(stream string, opts ...producer.Option) *producer.Producer[bench.Event] {
	p, err := producer.New[bench.Event](b.rdb, stream, append([]producer.Option{producer.WithCodec[bench.Event](bench.Codec)}, opts...)...)
	if err != nil {
		log.Fatal(err)
	}
	return p
}

func (b *runner) publish(seqN, n int) {
	fmt.Printf("\npublish: hand-written XADD with the fields encoded by hand vs Producer[Event]\n")
	b.compare("publish", "single XADD vs Publish, 1 goroutine", nil,
		func(s string) (bench.Result, error) { return bench.RawPublish(b.ctx, b.rdb, s, seqN, 1) },
		func(s string) (bench.Result, error) { return bench.Publish(b.ctx, b.producer(s), seqN, 1) })
	b.compare("publish", "pipelined XADD x100 vs PublishBatch(100)", nil,
		func(s string) (bench.Result, error) { return bench.RawPipelined(b.ctx, b.rdb, s, n, 100) },
		func(s string) (bench.Result, error) { return bench.PublishBatch(b.ctx, b.producer(s), n, 100) })
	b.compare("publish", "16 goroutines: XADD vs Publish", nil,
		func(s string) (bench.Result, error) { return bench.RawPublish(b.ctx, b.rdb, s, n, 16) },
		func(s string) (bench.Result, error) { return bench.Publish(b.ctx, b.producer(s), n, 16) })
	b.compare("publish", "16 goroutines: XADD vs Publish, no coalescing", nil,
		func(s string) (bench.Result, error) { return bench.RawPublish(b.ctx, b.rdb, s, n, 16) },
		func(s string) (bench.Result, error) {
			return bench.Publish(b.ctx, b.producer(s, producer.WithoutCoalescing()), n, 16)
		})
}

// flows runs the hand-written and midstream sides of an end-to-end
// measurement alternately, rounds times each, and records the row of their
// medians.
func (b *runner) flows(section, name string, h bench.Handler, fn func(bench.Side) (bench.Flow, error)) {
	var rr, mr [5][]float64 // handled rate, CPU per entry, p50, p99, sent rate
	run := func(side func(stream string) (bench.Side, error), into *[5][]float64) {
		s, err := side(b.key("e2e"))
		if err != nil {
			log.Fatal(err)
		}
		f, err := fn(s)
		if err != nil {
			log.Fatal(err)
		}
		into[0] = append(into[0], f.HandledRate())
		into[1] = append(into[1], float64(f.CPUPerEntry()))
		into[2] = append(into[2], float64(f.Quantile(0.5))/1e6)
		into[3] = append(into[3], float64(f.Quantile(0.99))/1e6)
		into[4] = append(into[4], f.SentRate())
		b.rdb.FlushDB(b.ctx)
	}
	const consumers = 2
	for range b.rounds {
		run(func(stream string) (bench.Side, error) { return bench.RawSide(b.rdb, stream, consumers, h), nil }, &rr)
		run(func(stream string) (bench.Side, error) { return bench.MidstreamSide(b.rdb, stream, consumers, h) }, &mr)
	}
	row := Row{Section: section, Name: name, Raw: median(rr[0]), Midstream: median(mr[0]),
		RawCPUNs: median(rr[1]), MidstreamCPUNs: median(mr[1]),
		RawP50Ms: median(rr[2]), RawP99Ms: median(rr[3]), MidstreamP50Ms: median(mr[2]), MidstreamP99Ms: median(mr[3])}
	row.Ratio = row.Midstream / row.Raw
	b.rows = append(b.rows, row)
	fmt.Printf("  %-44s handled raw %7.0f/s midstream %7.0f/s (%.2f)  p50 %.3f vs %.3f ms  p99 %.3f vs %.3f ms  CPU/entry %5.2f vs %5.2f µs\n",
		name, row.Raw, row.Midstream, row.Ratio, row.RawP50Ms, row.MidstreamP50Ms, row.RawP99Ms, row.MidstreamP99Ms,
		row.RawCPUNs/1e3, row.MidstreamCPUNs/1e3)
}

func (b *runner) latency(dur time.Duration) {
	fmt.Printf("\nend to end at a fixed rate: publish → handler, 2 consumers, %s per run; latency from the publish call to the handler call\n", dur)
	for _, rate := range []int{5_000, 20_000} {
		for _, h := range handlers {
			b.flows("latency", fmt.Sprintf("%d/s, %s", rate, h), h, func(s bench.Side) (bench.Flow, error) {
				return bench.Paced(b.ctx, s, rate, dur)
			})
		}
	}
}

func (b *runner) sustained(dur time.Duration) {
	fmt.Printf("\nmaximum sustained end to end: writers publishing flat out, 2 consumers with the typed handler, %s per run\n", dur)
	for _, writers := range []int{16, 64} {
		b.flows("sustained", fmt.Sprintf("%d writers", writers), bench.Decode, func(s bench.Side) (bench.Flow, error) {
			return bench.Flat(b.ctx, s, writers, dur)
		})
	}
}

func writeRows(path string, rows []Row) error {
	data, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

func readRows(path string) ([]Row, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rows []Row
	if err := json.Unmarshal(data, &rows); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rows, nil
}

// compareFiles prints, for each row of newPath also in oldPath, the ratio
// midstream/hand-written in each and midstream's CPU per entry in each.
func compareFiles(w *os.File, oldPath, newPath string) error {
	older, err := readRows(oldPath)
	if err != nil {
		return err
	}
	newer, err := readRows(newPath)
	if err != nil {
		return err
	}
	byName := map[string]Row{}
	for _, r := range older {
		byName[r.Section+"/"+r.Name] = r
	}
	fmt.Fprintf(w, "%-62s %8s %8s   %s\n", "row", "old", "new", "midstream CPU/entry old → new")
	for _, r := range newer {
		o, ok := byName[r.Section+"/"+r.Name]
		if r.Raw == 0 { // no hand-written side (scaleout): rates side by side
			old := "-"
			if ok {
				old = fmt.Sprintf("%.0f/s", o.Midstream)
			}
			fmt.Fprintf(w, "%-62s %8s %8s   (rates)\n", r.Section+": "+r.Name, old, fmt.Sprintf("%.0f/s", r.Midstream))
			continue
		}
		if !ok {
			fmt.Fprintf(w, "%-62s %8s %8.2f\n", r.Section+": "+r.Name, "-", r.Ratio)
			continue
		}
		fmt.Fprintf(w, "%-62s %8.2f %8.2f   %.2f → %.2f µs\n", r.Section+": "+r.Name, o.Ratio, r.Ratio, o.MidstreamCPUNs/1e3, r.MidstreamCPUNs/1e3)
	}
	return nil
}

func connect(addr string) (*redis.Client, string, func(), error) {
	if addr == "" && os.Getenv("REDIS_URL") != "" {
		opts, err := redis.ParseURL(os.Getenv("REDIS_URL"))
		if err != nil {
			return nil, "", nil, err
		}
		addr = opts.Addr
	}
	if addr != "" {
		rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64})
		return rdb, "at " + addr, func() { rdb.Close() }, rdb.Ping(context.Background()).Err()
	}
	dir, err := os.MkdirTemp("", "midstream-bench-")
	if err != nil {
		return nil, "", nil, err
	}
	srv, err := redisserver.Start(redisserver.Config{Dir: dir})
	if err != nil {
		return nil, "", nil, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 64})
	return rdb, "spawned at " + srv.Addr() + ", no persistence", func() {
		rdb.Close()
		srv.Close()
		os.RemoveAll(dir)
	}, nil
}

func field(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return "?"
}

func cpuModel() string {
	out, err := exec.Command("sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").Output()
	if err != nil || len(out) == 0 {
		return runtime.GOARCH
	}
	return strings.TrimSpace(string(out))
}
