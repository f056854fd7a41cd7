package main

import (
	"fmt"
	"log"
	"slices"

	"github.com/midstream-go/midstream/cmd/midstream-bench/bench"
	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/producer"
)

// variant is one OpenTelemetry set-up measured by the observability section.
type variant struct {
	name         string
	tel          *bench.Telemetry // nil: no options (the global providers, unset here)
	sampledEvery int              // one consumed entry in this many has a sampled traceparent (0: none)
}

func (v variant) consumerOptions() []consumer.Option {
	if v.tel == nil {
		return nil
	}
	return v.tel.ConsumerOptions()
}

func (v variant) producerOptions() []producer.Option {
	if v.tel == nil {
		return nil
	}
	return v.tel.ProducerOptions()
}

// observability measures the cost of OpenTelemetry: the same work with
// tracing and metrics off (no-op providers) and on (SDK providers: every
// span sampled and handed to a batch processor whose exporter discards it;
// every instrument recording into a manual reader), and the parts of it, in
// alternating runs of one process; the median of each is reported with its
// ratio to "off". The consumed entries carry a traceparent, as a traced
// producer writes, so "on" pays for reading it and "off" shows it skipped.
func (b *runner) observability(consumeN, seqN, publishN int) {
	fmt.Printf("\nobservability: OpenTelemetry off (no-op providers) vs on (SDK; spans to a batch processor and a discarding exporter, metrics to a manual reader)\n")
	newVariant := func(name string, tr bench.Sampling, metrics bool, sampledEvery int) variant {
		return variant{name: name, tel: bench.NewTelemetry(tr, metrics), sampledEvery: sampledEvery}
	}
	off := newVariant("off", bench.NoTracing, false, 1)
	on := newVariant("on: traces (AlwaysSample) + metrics", bench.AlwaysSample, true, 1)
	variants := []variant{
		off,
		{name: "default (no option, no global provider)", sampledEvery: 1},
		newVariant("metrics only", bench.NoTracing, true, 1),
		newVariant("traces only (AlwaysSample)", bench.AlwaysSample, false, 1),
		on,
		newVariant("on, ParentBased(TraceIDRatio 0.1) + metrics", bench.TenPercent, true, 10),
		newVariant("on, producer sampled the entries out", bench.ParentSampled, true, 0),
	}
	noExport := newVariant("traces recorded, no span processor", bench.SampleNoExport, false, 1)
	variants = append(variants, noExport)
	defer func() {
		for _, v := range variants {
			if v.tel != nil {
				v.tel.Shutdown()
			}
		}
	}()
	for _, consumers := range []int{1, 4} {
		vs := []variant{off, on}
		if consumers == 1 {
			vs = variants[:len(variants)-1] // all but noExport
		}
		rates := b.alternate(vs, func(v variant) (bench.Result, error) {
			stream := b.key("otel")
			if err := bench.FillTraced(b.ctx, b.rdb, stream, consumeN, v.sampledEvery); err != nil {
				return bench.Result{}, err
			}
			return bench.Consume(b.ctx, b.rdb, stream, "ms", consumeN, consumers, bench.Decode, v.consumerOptions()...)
		})
		fmt.Printf("  consume %d entries, %d consumer(s), typed handler:\n", consumeN, consumers)
		b.vsOff(fmt.Sprintf("consume, %d consumer(s)", consumers), vs, rates)
	}
	for _, writers := range []int{1, 16} {
		n := publishN
		if writers == 1 {
			n = seqN
		}
		vs := []variant{off, variants[1], variants[2], variants[3], noExport, on, variants[5]}
		rates := b.alternate(vs, func(v variant) (bench.Result, error) {
			return bench.Publish(b.ctx, b.producer(b.key("pub"), v.producerOptions()...), n, writers)
		})
		fmt.Printf("  Publish %d entries, %d goroutine(s):\n", n, writers)
		b.vsOff(fmt.Sprintf("Publish, %d goroutine(s)", writers), vs, rates)
	}
	if err := on.tel.Collect(b.ctx); err != nil {
		log.Fatal(err)
	}
}

// vsOff prints each variant's rate and its ratio to the first's ("off"),
// and records them as rows (raw: off, midstream: the variant).
func (b *runner) vsOff(what string, vs []variant, rates []float64) {
	for i, v := range vs {
		fmt.Printf("    %-42s %9.0f/s   vs off %.3f (%+.1f%%)\n", v.name, rates[i], rates[i]/rates[0], (rates[i]/rates[0]-1)*100)
		if i > 0 {
			b.rows = append(b.rows, Row{Section: "observability", Name: what + ": " + v.name, Raw: rates[0], Midstream: rates[i], Ratio: rates[i] / rates[0]})
		}
	}
}

// alternate runs fn for each variant in turn, rounds times, and returns the
// median rate of each.
func (b *runner) alternate(vs []variant, fn func(variant) (bench.Result, error)) []float64 {
	rates := make([][]float64, len(vs))
	for range b.rounds {
		for i, v := range vs {
			r, err := fn(v)
			if err != nil {
				log.Fatal(err)
			}
			rates[i] = append(rates[i], r.Rate())
			b.rdb.FlushDB(b.ctx)
		}
	}
	med := make([]float64, len(vs))
	for i, rs := range rates {
		slices.Sort(rs)
		med[i] = rs[len(rs)/2]
	}
	return med
}
