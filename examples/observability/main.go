// Command observability runs a producer and a consumer group with
// OpenTelemetry tracing and metrics, on an embedded miniredis or on the
// server at REDIS_URL, and shows:
//
//   - each order's trace, from the checkout that published it, through
//     Redis (the producer writes its span's context into the entry's
//     traceparent field), to the consumer span that processed it and the
//     handler's own span below; a flaky order's retry and a poison order's
//     move to the dead-letter stream in the same trace;
//   - the metrics, scraped once from a Prometheus endpoint served by the
//     OpenTelemetry Prometheus exporter (http://127.0.0.1:9464/metrics by
//     default; -hold keeps it up after the run);
//   - a health snapshot of the stream (package health), which needs no
//     OpenTelemetry at all.
//
// With -json the stdout exporters also print every span and, once, every
// metric as JSON.
//
//	go run ./examples/observability
//	go run ./examples/observability -json -hold 1m
//	REDIS_URL=redis://localhost:6379/0 go run ./examples/observability
//
// The providers are installed as OpenTelemetry's globals, which midstream
// uses by default; producer.WithTracerProvider and the like take explicit
// ones instead.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	promclient "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/midstream-go/midstream/consumer"
	"github.com/midstream-go/midstream/examples/internal/exampleredis"
	"github.com/midstream-go/midstream/health"
	"github.com/midstream-go/midstream/producer"
)

// Order is what the shop publishes.
type Order struct {
	ID     string  `redis:"orderId"`
	Amount float64 `redis:"amount"`
}

// options are the program's flags.
type options struct {
	promAddr string        // where to serve /metrics
	hold     time.Duration // how long to keep serving after the run
	json     bool          // also print the stdout exporters' JSON
}

func main() {
	var o options
	flag.StringVar(&o.promAddr, "prometheus", "127.0.0.1:9464", "address of the Prometheus endpoint (/metrics)")
	flag.DurationVar(&o.hold, "hold", 0, "keep serving /metrics this long after the run")
	flag.BoolVar(&o.json, "json", false, "also print every span and the metrics with the stdout exporters (JSON)")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, o); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, out io.Writer, o options) error {
	rdb, where, closeAll, err := exampleredis.Connect(ctx)
	if err != nil {
		return err
	}
	defer closeAll()
	fmt.Fprintln(out, "using", where)

	// Tracing: sample everything; keep the spans to print the traces, and
	// with -json print each one as it ends.
	spans := tracetest.NewSpanRecorder()
	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(spans)}
	if o.json {
		exp, err := stdouttrace.New(stdouttrace.WithWriter(out))
		if err != nil {
			return err
		}
		tpOpts = append(tpOpts, sdktrace.WithSyncer(exp))
	}
	tp := sdktrace.NewTracerProvider(tpOpts...)
	defer tp.Shutdown(context.WithoutCancel(ctx))

	// Metrics: a Prometheus endpoint, and with -json the stdout exporter,
	// which prints once, when the provider shuts down.
	reg := promclient.NewRegistry()
	promExp, err := prometheus.New(prometheus.WithRegisterer(reg))
	if err != nil {
		return err
	}
	mpOpts := []sdkmetric.Option{sdkmetric.WithReader(promExp)}
	if o.json {
		exp, err := stdoutmetric.New(stdoutmetric.WithWriter(out))
		if err != nil {
			return err
		}
		mpOpts = append(mpOpts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))))
	}
	mp := sdkmetric.NewMeterProvider(mpOpts...)
	defer func() {
		if o.json {
			fmt.Fprintln(out, "\nmetrics (stdout exporter):")
		}
		_ = mp.Shutdown(context.WithoutCancel(ctx))
	}()

	// midstream uses the global providers unless told otherwise. Without a
	// propagator nothing is written into the entries.
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))

	ln, err := net.Listen("tcp", o.promAddr)
	if err != nil {
		return err
	}
	metricsURL := "http://" + ln.Addr().String() + "/metrics"
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	fmt.Fprintln(out, "Prometheus endpoint:", metricsURL)

	stream := fmt.Sprintf("{orders-%d}", time.Now().UnixNano())
	defer rdb.Del(ctx, stream, stream+":dlq")
	if err := publish(ctx, out, rdb, stream); err != nil {
		return err
	}
	snap, scraped, err := consume(ctx, rdb, stream, metricsURL)
	if err != nil {
		return err
	}
	printTraces(out, spans.Ended())

	fmt.Fprintln(out, "\nmetrics, scraped once from", metricsURL+":")
	for _, line := range scraped {
		fmt.Fprintln(out, " ", line)
	}
	if strings.Contains(where, "miniredis") {
		fmt.Fprintln(out, "  (miniredis reports a group's lag as the stream's length; a real Redis reports the true lag)")
	}

	fmt.Fprintf(out, "\nhealth of %s: %d entries, %d in the dead-letter stream %s\n", snap.Stream, snap.Length, snap.DeadLetter.Length, snap.DeadLetter.Key)
	for _, g := range snap.Groups {
		fmt.Fprintf(out, "  group %s: %d consumer(s), %d pending, last delivered %s\n", g.Name, g.ConsumerCount, g.Pending, g.LastDeliveredID)
	}
	if o.hold > 0 {
		fmt.Fprintf(out, "\nserving %s for %s\n", metricsURL, o.hold)
		select {
		case <-time.After(o.hold):
		case <-ctx.Done():
		}
	}
	return nil
}

// publish adds three orders, each from its own checkout span, and shows the
// trace context an entry carries.
func publish(ctx context.Context, out io.Writer, rdb *redis.Client, stream string) error {
	p, err := producer.New[Order](rdb, stream)
	if err != nil {
		return err
	}
	tracer := otel.Tracer("shop")
	for i, amount := range []float64{9.99, 24.50, 5.00} {
		cctx, span := tracer.Start(ctx, fmt.Sprintf("checkout order-%d", i+1))
		id, err := p.Publish(cctx, Order{ID: fmt.Sprintf("order-%d", i+1), Amount: amount})
		span.End()
		if err != nil {
			return err
		}
		if i == 0 {
			e, err := rdb.XRange(ctx, stream, id, id).Result()
			if err != nil || len(e) != 1 {
				return fmt.Errorf("reading back %s: %v", id, err)
			}
			fmt.Fprintf(out, "published order-1 as %s; its fields in Redis: %v\n", id, e[0].Values)
		}
	}
	return nil
}

// consume runs a worker until every order is handled or dead-lettered:
// order-2 fails once (and is reclaimed), order-3 fails for good. It returns
// a health snapshot and the scraped metrics, both taken while the worker
// runs (its gauges are registered only then).
func consume(ctx context.Context, rdb *redis.Client, stream, metricsURL string) (health.StreamHealth, []string, error) {
	var failedOnce atomic.Bool
	tracer := otel.Tracer("shop")
	h := consumer.Typed(func(ctx context.Context, o Order, m *consumer.Message) error {
		// ctx carries the process span: work done here joins the trace.
		_, span := tracer.Start(ctx, "charge "+o.ID)
		defer span.End()
		switch {
		case o.ID == "order-2" && failedOnce.CompareAndSwap(false, true):
			return errors.New("payment service timed out")
		case o.ID == "order-3":
			return consumer.Permanent(errors.New("card declined"))
		}
		return nil
	})
	c, err := consumer.New(rdb, stream, "billing", h, consumer.WithName("worker-1"),
		consumer.WithStart(consumer.StartBeginning), consumer.WithBlock(50*time.Millisecond),
		consumer.WithMinIdle(100*time.Millisecond), consumer.WithClaimInterval(50*time.Millisecond))
	if err != nil {
		return health.StreamHealth{}, nil, err
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- c.Run(wctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for s := c.Stats(); s.Handled < 2 || s.DeadLettered < 1; s = c.Stats() {
		if time.Now().After(deadline) {
			return health.StreamHealth{}, nil, fmt.Errorf("orders not settled in time: %+v", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let the last acknowledgement go out
	snap, err := health.Snapshot(ctx, rdb, stream)
	if err != nil {
		return snap, nil, err
	}
	scraped, err := scrape(ctx, metricsURL)
	if err != nil {
		return snap, nil, err
	}
	stop()
	return snap, scraped, <-done
}

// scrape gets the endpoint once and keeps midstream's series, without
// histogram buckets.
func scrape(ctx context.Context, url string) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "midstream_") && !strings.Contains(line, "_bucket{") {
			lines = append(lines, shortenLabels(line))
		}
	}
	return lines, sc.Err()
}

// shortenLabels drops the labels that are the same on every series, to
// keep the lines readable.
func shortenLabels(line string) string {
	open, end := strings.IndexByte(line, '{'), strings.LastIndexByte(line, '}')
	if open < 0 || end < open {
		return line
	}
	var keep []string
	for _, l := range strings.Split(line[open+1:end], ",") {
		if !strings.HasPrefix(l, "otel_scope_") && !strings.HasPrefix(l, "messaging_system=") &&
			!strings.HasPrefix(l, "messaging_destination_name=") {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		return line[:open] + line[end+1:]
	}
	return line[:open] + "{" + strings.Join(keep, ",") + "}" + line[end+1:]
}

// printTraces prints each trace as a tree of spans.
func printTraces(out io.Writer, spans []sdktrace.ReadOnlySpan) {
	children := map[trace.SpanID][]sdktrace.ReadOnlySpan{}
	var roots []sdktrace.ReadOnlySpan
	known := map[trace.SpanID]bool{}
	for _, s := range spans {
		known[s.SpanContext().SpanID()] = true
	}
	for _, s := range spans {
		if p := s.Parent(); p.IsValid() && known[p.SpanID()] {
			children[p.SpanID()] = append(children[p.SpanID()], s)
		} else {
			roots = append(roots, s)
		}
	}
	byStart := func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) }
	slices.SortFunc(roots, byStart)
	var walk func(s sdktrace.ReadOnlySpan, depth int)
	walk = func(s sdktrace.ReadOnlySpan, depth int) {
		line := fmt.Sprintf("%s%s [%s] span %s", strings.Repeat("  ", depth+1), s.Name(), s.SpanKind(), s.SpanContext().SpanID())
		if s.Parent().IsRemote() {
			line += fmt.Sprintf(", parent %s read from the entry's traceparent", s.Parent().SpanID())
		}
		for _, kv := range s.Attributes() {
			switch kv.Key {
			case "messaging.message.id":
				line += ", entry " + kv.Value.String()
			case "messaging.redis.delivery_count":
				line += ", delivery " + kv.Value.String()
			case "midstream.reclaim.claimed":
				line += ", claimed " + kv.Value.String()
			}
		}
		if st := s.Status(); st.Description != "" {
			line += fmt.Sprintf(", %s: %s", st.Code, st.Description)
		}
		fmt.Fprintln(out, line)
		kids := children[s.SpanContext().SpanID()]
		slices.SortFunc(kids, byStart)
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	for _, r := range roots {
		fmt.Fprintf(out, "\ntrace %s\n", r.SpanContext().TraceID())
		walk(r, 0)
	}
}
