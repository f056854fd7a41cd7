package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/midstream-go/midstream/dashboard"
	"github.com/midstream-go/midstream/internal/ops"
)

func (a *app) dashboardCommand() *cobra.Command {
	var (
		listen      string
		patterns    []string
		write       bool
		token       string
		interval    time.Duration
		history     time.Duration
		noMetrics   bool
		redriveRate float64
		limit       int
		origins     []string
	)
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Serve the web dashboard and /metrics",
		Long: `Serve the web dashboard (streams overview with charts, groups, consumers,
pending entries, dead letters, live tail) at / and Prometheus metrics (the
health gauges of every stream matching --pattern, through the OpenTelemetry
Prometheus exporter) at /metrics.

It listens on 127.0.0.1:8080 by default, and then answers only requests
addressed to a loopback name. It is read-only unless --write; write actions
need the page's anti-forgery token and, with --token (or
$MIDSTREAM_DASHBOARD_TOKEN), the bearer token, which the page asks for.
--write on an address other than loopback needs a token.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if token == "" {
				token = os.Getenv("MIDSTREAM_DASHBOARD_TOKEN")
			}
			host, _, err := net.SplitHostPort(listen)
			if err != nil {
				return usageError{fmt.Errorf("--listen: %w", err)}
			}
			loopback := isLoopback(host)
			if write && !loopback && token == "" {
				return usageError{errors.New("--write on a non-loopback address needs --token")}
			}
			if limit < 1 || limit > ops.MaxStreams {
				return usageError{fmt.Errorf("--limit %d is not in [1, %d]", limit, ops.MaxStreams)}
			}
			c, err := a.connect(ctx)
			if err != nil {
				return err
			}
			logger := slog.New(slog.NewTextHandler(a.errOut, &slog.HandlerOptions{Level: slog.LevelInfo}))
			opts := []dashboard.Option{dashboard.WithPatterns(patterns...), dashboard.WithSampleInterval(interval),
				dashboard.WithHistory(history), dashboard.WithRedriveRate(redriveRate), dashboard.WithMaxStreams(limit),
				dashboard.WithLogger(logger)}
			if write {
				opts = append(opts, dashboard.WithWriteActions(), dashboard.WithToken(token), dashboard.WithTrustedOrigins(origins...))
			}
			d, err := dashboard.New(c, opts...)
			if err != nil {
				return usageError{err}
			}
			guard := func(h http.Handler) http.Handler {
				if loopback {
					return loopbackOnly(h)
				}
				return h
			}
			mux := http.NewServeMux()
			mux.Handle("/", guard(d))
			var m *metrics
			if !noMetrics {
				if m, err = newMetrics(c, patterns, limit); err != nil {
					return err
				}
				// The first scrape finds every stream that exists now.
				if err := m.refresh(ctx); err != nil {
					_ = m.shutdown(context.Background())
					return err
				}
				mux.Handle("GET /metrics", guard(m.handler()))
			}
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			// Everything started below stops with ctx, also when Serve fails.
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
				BaseContext: func(net.Listener) context.Context { return ctx }}
			fmt.Fprintf(a.errOut, "midstream dashboard on http://%s/ (%s)\n", l.Addr(), mode(write, token))
			var wg sync.WaitGroup
			wg.Go(func() { _ = d.Run(ctx) })
			if m != nil {
				wg.Go(func() {
					m.run(ctx, metricsRefresh, func(err error) { logger.Warn("metrics: listing streams failed", "error", err) })
				})
			}
			serveErr := make(chan error, 1)
			go func() { serveErr <- srv.Serve(l) }()
			select {
			case err = <-serveErr:
			case <-ctx.Done():
				sctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
				err = srv.Shutdown(sctx)
				stop()
				<-serveErr
			}
			cancel()
			wg.Wait()
			if m != nil {
				sctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
				_ = m.shutdown(sctx)
				stop()
			}
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve on")
	f.StringSliceVar(&patterns, "pattern", []string{"*"}, "glob patterns of the streams shown and exported (repeatable)")
	f.BoolVar(&write, "write", false, "enable write actions (redrive, delete dead letters)")
	f.StringVar(&token, "token", "", "bearer token write actions need (default $MIDSTREAM_DASHBOARD_TOKEN)")
	f.DurationVar(&interval, "interval", dashboard.DefaultSampleInterval, "how often the charts are sampled")
	f.DurationVar(&history, "history", dashboard.DefaultHistory, "how far back the charts go")
	f.BoolVar(&noMetrics, "no-metrics", false, "do not serve /metrics")
	f.Float64Var(&redriveRate, "redrive-rate", dashboard.DefaultRedriveRate, "most dead letters redriven per second")
	f.IntVar(&limit, "limit", dashboard.DefaultMaxStreams, "most streams shown and exported")
	f.StringSliceVar(&origins, "trusted-origin", nil, "origins (https://host:port) whose pages may write too, behind a proxy")
	return cmd
}

// metricsRefresh is how often /metrics looks for streams that appeared or
// went.
const metricsRefresh = 30 * time.Second

func mode(write bool, token string) string {
	switch {
	case !write:
		return "read-only"
	case token != "":
		return "write actions enabled, token required"
	}
	return "write actions enabled"
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loopbackOnly refuses requests whose Host is not a loopback name: a page
// of another site that points a name of its own at 127.0.0.1 (DNS
// rebinding) cannot read the dashboard.
func loopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		if !isLoopback(host) {
			http.Error(w, "this dashboard answers loopback names only", http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}
