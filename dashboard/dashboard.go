package dashboard

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream"
)

//go:embed assets
var assets embed.FS

// Dashboard is the web dashboard: an http.Handler serving the page at its
// root ("/") and its JSON API under "api/". It is safe for concurrent use.
type Dashboard struct {
	client redis.UniversalClient
	cfg    config
	csrf   string
	page   []byte
	mux    *http.ServeMux
	cop    *http.CrossOriginProtection
	tails  chan struct{} // one slot per open tail
	hist   history
}

// New returns a dashboard of the streams client reaches. It checks the
// options (errors wrap midstream.ErrInvalidOption) and does no I/O. The
// caller keeps ownership of client.
func New(client redis.UniversalClient, opts ...Option) (*Dashboard, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: dashboard: nil client", midstream.ErrInvalidOption)
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	page, err := assets.ReadFile("assets/index.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	d := &Dashboard{client: client, cfg: cfg, csrf: hex.EncodeToString(b[:]), mux: http.NewServeMux(),
		cop: http.NewCrossOriginProtection(), tails: make(chan struct{}, cfg.maxTails)}
	for _, o := range cfg.origins {
		if err := d.cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("%w: dashboard: trusted origin: %w", midstream.ErrInvalidOption, err)
		}
	}
	d.page = bytes.ReplaceAll(page, []byte("{{CSRF}}"), []byte(d.csrf))
	d.routes()
	return d, nil
}

// Run samples the streams every sample interval for the charts until ctx
// ends, then returns nil. Failed samples are logged and retried at the next
// tick. Running it is optional (see the package documentation).
func (d *Dashboard) Run(ctx context.Context) error {
	t := time.NewTicker(d.cfg.interval)
	defer t.Stop()
	for {
		if err := d.hist.sample(ctx, d.client, &d.cfg, d.cfg.interval/2); err != nil && ctx.Err() == nil {
			d.cfg.logger.Warn("dashboard: sample failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// ServeHTTP serves the page and its API.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "same-origin")
	d.mux.ServeHTTP(w, r)
}

func (d *Dashboard) routes() {
	d.mux.HandleFunc("GET /{$}", d.index)
	d.mux.HandleFunc("GET /app.js", d.asset("assets/app.js", "text/javascript; charset=utf-8"))
	d.mux.HandleFunc("GET /api/overview", d.overview)
	d.mux.HandleFunc("GET /api/stream", d.stream)
	d.mux.HandleFunc("GET /api/pending", d.pending)
	d.mux.HandleFunc("GET /api/entry", d.entry)
	d.mux.HandleFunc("GET /api/dlq", d.dlq)
	d.mux.HandleFunc("GET /api/tail", d.tail)
	d.mux.HandleFunc("POST /api/dlq/redrive", d.write(d.redrive))
	d.mux.HandleFunc("POST /api/dlq/delete", d.write(d.delete))
}

func (d *Dashboard) index(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")
	_, _ = w.Write(d.page)
}

func (d *Dashboard) asset(name, contentType string) http.HandlerFunc {
	b, err := assets.ReadFile(name)
	return func(w http.ResponseWriter, _ *http.Request) {
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", contentType)
		_, _ = w.Write(b)
	}
}
