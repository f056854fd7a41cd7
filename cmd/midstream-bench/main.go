// Command midstream-bench measures midstream against raw go-redis baselines
// doing the same work, in the same process, against one Redis server, and
// prints rates and the ratio midstream/raw for each pair.
//
//	go run ./cmd/midstream-bench                 # spawns its own redis-server
//	go run ./cmd/midstream-bench -addr host:port # or REDIS_URL=redis://…
//
// The server is spawned without persistence (like a cache-tier Redis) on a
// free loopback port; entries are ~100-byte JSON events in one field.
package main

import (
	"context"
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

	"github.com/midstream-go/midstream/internal/bench"
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
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}

	ctx := context.Background()
	rdb, where, cleanup, err := connect(*addr)
	if err != nil {
		log.Fatal(err)
	}
	defer cleanup()
	info := rdb.Info(ctx, "server").Val()
	fmt.Printf("midstream-bench: %s, %d CPUs, %s; Redis %s (%s)\n", runtime.Version(), runtime.NumCPU(), cpuModel(), field(info, "redis_version"), where)

	b := &runner{ctx: ctx, rdb: rdb, rounds: *rounds}
	sections := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		sections[strings.TrimSpace(s)] = true
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
}

type runner struct {
	ctx    context.Context
	rdb    *redis.Client
	rounds int
	seq    int
}

func (b *runner) key(name string) string {
	b.seq++
	return fmt.Sprintf("bench:%s:%d:%d", name, time.Now().UnixNano(), b.seq)
}

// compare runs raw and ms alternately, rounds times each, and returns the
// median rate of each: alternating spreads the machine's noise over both.
func (b *runner) compare(raw, ms func() (bench.Result, error)) (float64, float64) {
	var rawRates, msRates []float64
	run := func(fn func() (bench.Result, error), into *[]float64) {
		r, err := fn()
		if err != nil {
			log.Fatal(err)
		}
		*into = append(*into, r.Rate())
		b.rdb.FlushDB(b.ctx) // each run starts from an empty server
	}
	for range b.rounds {
		run(raw, &rawRates)
		run(ms, &msRates)
	}
	slices.Sort(rawRates)
	slices.Sort(msRates)
	return rawRates[len(rawRates)/2], msRates[len(msRates)/2]
}

func pair(name string, raw, ms float64) {
	fmt.Printf("  %-40s raw %9.0f/s   midstream %9.0f/s   ratio %.2f\n", name, raw, ms, ms/raw)
}

func (b *runner) consume(n int) {
	fmt.Printf("\nconsume: drain %d pre-filled entries (~100-byte JSON), no-op handler\n", n)
	for _, consumers := range []int{1, 4} {
		prefill := func() string {
			stream := b.key("consume")
			if err := bench.Fill(b.ctx, b.rdb, stream, n); err != nil {
				log.Fatal(err)
			}
			return stream
		}
		raw, ms := b.compare(func() (bench.Result, error) {
			return bench.RawConsume(b.ctx, b.rdb, prefill(), "raw", n, consumers)
		}, func() (bench.Result, error) {
			return bench.Consume(b.ctx, b.rdb, prefill(), "ms", n, consumers)
		})
		pair(fmt.Sprintf("%d consumer(s), XREADGROUP COUNT 100", consumers), raw, ms)
	}
}

func (b *runner) reclaim(n int) {
	fmt.Printf("\nreclaim: take over %d entries a crashed consumer left pending, one consumer, no-op handler\n", n)
	orphan := func() string {
		stream := b.key("reclaim")
		if err := bench.Orphan(b.ctx, b.rdb, stream, "g", n); err != nil {
			log.Fatal(err)
		}
		return stream
	}
	raw, ms := b.compare(func() (bench.Result, error) {
		return bench.RawReclaim(b.ctx, b.rdb, orphan(), "g", n)
	}, func() (bench.Result, error) {
		return bench.Reclaim(b.ctx, b.rdb, orphan(), "g", n)
	})
	pair("XAUTOCLAIM 100 + XACK vs reclaim loop", raw, ms)
}

func (b *runner) producer(stream string, opts ...producer.Option) *producer.Producer[bench.Event] {
	p, err := producer.New[bench.Event](b.rdb, stream, append([]producer.Option{producer.WithCodec[bench.Event](bench.Codec)}, opts...)...)
	if err != nil {
		log.Fatal(err)
	}
	return p
}

func (b *runner) publish(seqN, n int) {
	fmt.Printf("\npublish: ~100-byte JSON events\n")
	raw, ms := b.compare(
		func() (bench.Result, error) { return bench.RawPublish(b.ctx, b.rdb, b.key("pub"), seqN, 1) },
		func() (bench.Result, error) { return bench.Publish(b.ctx, b.producer(b.key("pub")), seqN, 1) })
	pair("single XADD vs Publish, 1 goroutine", raw, ms)

	raw, ms = b.compare(
		func() (bench.Result, error) { return bench.RawPipelined(b.ctx, b.rdb, b.key("pub"), n, 100) },
		func() (bench.Result, error) { return bench.PublishBatch(b.ctx, b.producer(b.key("pub")), n, 100) })
	pair("pipelined XADD x100 vs PublishBatch(100)", raw, ms)

	raw, ms = b.compare(
		func() (bench.Result, error) { return bench.RawPublish(b.ctx, b.rdb, b.key("pub"), n, 16) },
		func() (bench.Result, error) { return bench.Publish(b.ctx, b.producer(b.key("pub")), n, 16) })
	pair("16 goroutines: XADD vs Publish", raw, ms)
	raw, off := b.compare(
		func() (bench.Result, error) { return bench.RawPublish(b.ctx, b.rdb, b.key("pub"), n, 16) },
		func() (bench.Result, error) {
			return bench.Publish(b.ctx, b.producer(b.key("pub"), producer.WithoutCoalescing()), n, 16)
		})
	pair("16 goroutines: XADD vs Publish, no coalescing", raw, off)
}

func (b *runner) latency(dur time.Duration) {
	fmt.Printf("\nend to end: Publish → typed handler (2 consumers), %s per rate\n", dur)
	for _, rate := range []int{5_000, 20_000} {
		f, err := bench.Paced(b.ctx, b.rdb, b.key("e2e"), rate, dur, 2)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("  offered %6d/s: achieved %7.0f/s   latency p50 %-9s p99 %-9s max %s\n", rate, f.SentRate(),
			f.Quantile(0.5).Round(time.Microsecond), f.Quantile(0.99).Round(time.Microsecond), f.Quantile(1).Round(time.Microsecond))
		b.rdb.FlushDB(b.ctx)
	}
}

func (b *runner) sustained(dur time.Duration) {
	fmt.Printf("\nmaximum sustained end to end: writers publishing flat out, 2 consumers, %s\n", dur)
	for _, writers := range []int{16, 64, 256} {
		f, err := bench.Flat(b.ctx, b.rdb, b.key("flat"), writers, 2, dur)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("  %2d writers: published %7.0f/s   handled %7.0f/s   backlog at end %d   latency p50 %s p99 %s\n", writers,
			f.SentRate(), f.HandledRate(), f.Sent-f.Handled, f.Quantile(0.5).Round(time.Microsecond), f.Quantile(0.99).Round(time.Microsecond))
		b.rdb.FlushDB(b.ctx)
	}
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
