// Command feed-web is a small social web app on midstream's feed and notify
// packages: users post, follow each other, watch their feed update live and
// see a notification badge count up, over server-sent events, with plain
// HTML and JavaScript. It uses an embedded miniredis, or the server at
// REDIS_URL, and listens on loopback only.
//
//	go run ./examples/feed-web                 # then open http://127.0.0.1:8080/?user=bob
//	go run ./examples/feed-web -addr 127.0.0.1:9000
//	REDIS_URL=redis://localhost:6379/0 go run ./examples/feed-web
//
// A post by alice is appended to the activity stream (feed.Append) and sends
// a notification (notify.Send) to each of her followers. Each open page has
// one event stream (/events?user=...) that carries a snapshot (feed.Read,
// following list, notify.UnreadCount), then new posts (feed.Live) and the
// unread count whenever it changes (notify.Live, or a mark-read).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/midstream-go/midstream/examples/internal/exampleredis"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on (keep it on loopback: there is no authentication)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run serves the app on addr until ctx is done, then shuts down: open event
// streams end with ctx, and the server waits for the other requests.
func run(ctx context.Context, addr string, out io.Writer) error {
	rdb, where, closeAll, err := exampleredis.Connect(ctx)
	if err != nil {
		return err
	}
	defer closeAll()
	a, err := newApp(rdb)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "using", where)
	fmt.Fprintf(out, "listening on http://%s/?user=alice (and ?user=bob in another tab)\n", ln.Addr())

	srv := &http.Server{
		Handler:           a,
		ReadHeaderTimeout: 10 * time.Second,
		// No WriteTimeout: event streams stay open. They end when the
		// client goes away or when ctx, their base context, is done.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	fmt.Fprintln(out, "stopped")
	return err
}
