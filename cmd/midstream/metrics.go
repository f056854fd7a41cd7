package main

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	promclient "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/midstream-go/midstream/health"
	"github.com/midstream-go/midstream/internal/ops"
)

// metrics exports health.Gauges of every stream matching the patterns
// through the OpenTelemetry Prometheus exporter, on a registry of its own.
type metrics struct {
	client   redis.UniversalClient
	patterns []string
	limit    int
	reg      *promclient.Registry
	mp       *sdkmetric.MeterProvider
	gauges   *health.Gauges

	mu   sync.Mutex
	regs map[string]metric.Registration // by stream
}

func newMetrics(client redis.UniversalClient, patterns []string, limit int) (*metrics, error) {
	reg := promclient.NewRegistry()
	exp, err := prometheus.New(prometheus.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp),
		sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", "midstream"))))
	g, err := health.NewGauges(mp)
	if err != nil {
		_ = mp.Shutdown(context.Background())
		return nil, err
	}
	return &metrics{client: client, patterns: patterns, limit: limit, reg: reg, mp: mp, gauges: g,
		regs: map[string]metric.Registration{}}, nil
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// refresh registers the gauges of the streams that match now and drops
// those of streams gone.
func (m *metrics) refresh(ctx context.Context) error {
	var found []string
	for _, p := range m.patterns {
		s, _, err := ops.FindStreams(ctx, m.client, p, m.limit, false)
		if err != nil {
			return err
		}
		found = append(found, s...)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, s := range found {
		if _, ok := m.regs[s]; ok {
			continue
		}
		r, err := m.gauges.Register(m.client, s, health.WithoutConsumers())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m.regs[s] = r
	}
	for s, r := range m.regs {
		if !slices.Contains(found, s) {
			errs = append(errs, r.Unregister())
			delete(m.regs, s)
		}
	}
	return errors.Join(errs...)
}

// run refreshes the set of streams every interval until ctx ends.
func (m *metrics) run(ctx context.Context, every time.Duration, warn func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := m.refresh(ctx); err != nil && ctx.Err() == nil {
			warn(err)
		}
	}
}

func (m *metrics) shutdown(ctx context.Context) error { return m.mp.Shutdown(ctx) }
