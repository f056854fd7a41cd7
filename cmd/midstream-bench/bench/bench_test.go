package bench_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/midstream-go/midstream/cmd/midstream-bench/bench"
	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/producer"
)

// The benchmarks run each midstream path beside the hand-written go-redis
// loop doing the same work, on the same real redis-server (started by
// redistest; skipped without one). The bench program (go run
// ./cmd/midstream-bench) runs them longer and prints ratios.
//
//	go test -run '^$' -bench . ./cmd/midstream-bench/bench/

func report(b *testing.B, r bench.Result, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(r.Rate(), "msgs/s")
	b.ReportMetric(float64(r.CPUPerEntry().Nanoseconds()), "cpu-ns/msg")
	b.ReportMetric(r.AllocsPerEntry(), "allocs/msg")
}

func BenchmarkPublish(b *testing.B) {
	srv := redistest.Start(b)
	ctx := context.Background()
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("raw/writers=%d", writers), func(b *testing.B) {
			r, err := bench.RawPublish(ctx, srv.Client, srv.Key("raw"), b.N, writers)
			report(b, r, err)
		})
		b.Run(fmt.Sprintf("midstream/writers=%d", writers), func(b *testing.B) {
			p, err := producer.New[bench.Event](srv.Client, srv.Key("ms"), producer.WithCodec[bench.Event](bench.Codec))
			if err != nil {
				b.Fatal(err)
			}
			r, err := bench.Publish(ctx, p, b.N, writers)
			report(b, r, err)
		})
	}
}

func BenchmarkPublishBatch(b *testing.B) {
	srv := redistest.Start(b)
	ctx := context.Background()
	b.Run("raw/pipeline=100", func(b *testing.B) {
		r, err := bench.RawPipelined(ctx, srv.Client, srv.Key("raw"), b.N, 100)
		report(b, r, err)
	})
	b.Run("midstream/batch=100", func(b *testing.B) {
		p, err := producer.New[bench.Event](srv.Client, srv.Key("ms"), producer.WithCodec[bench.Event](bench.Codec))
		if err != nil {
			b.Fatal(err)
		}
		r, err := bench.PublishBatch(ctx, p, b.N, 100)
		report(b, r, err)
	})
}

func BenchmarkConsume(b *testing.B) {
	srv := redistest.Start(b)
	ctx := context.Background()
	runs := 0
	for _, consumers := range []int{1, 4} {
		for _, h := range []bench.Handler{bench.ReadFields, bench.Decode} {
			for _, side := range []string{"raw", "midstream"} {
				b.Run(fmt.Sprintf("%s/consumers=%d/%s", side, consumers, map[bench.Handler]string{bench.ReadFields: "fields", bench.Decode: "typed"}[h]), func(b *testing.B) {
					b.StopTimer()
					runs++
					stream := srv.Key(fmt.Sprint("consume-", runs))
					if err := bench.Fill(ctx, srv.Client, stream, b.N); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					var r bench.Result
					var err error
					if side == "raw" {
						r, err = bench.RawConsume(ctx, srv.Client, stream, "g", b.N, consumers, h)
					} else {
						r, err = bench.Consume(ctx, srv.Client, stream, "g", b.N, consumers, h)
					}
					report(b, r, err)
				})
			}
		}
	}
}
