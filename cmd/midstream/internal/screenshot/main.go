// Command screenshot takes the README's picture of the dashboard: it starts
// a redis-server, runs a small simulated workload on a few streams (writers,
// groups that keep up or fall behind, entries left pending, dead letters),
// serves the dashboard on it, and saves a screenshot of the page taken in
// headless Chromium. Run it through scripts/dashboard-screenshot.sh.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"sync"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/midstream-go/midstream/dashboard"
	"github.com/midstream-go/midstream/deadletter"
	"github.com/midstream-go/midstream/internal/redisserver"
)

func main() {
	out := flag.String("o", "docs/dashboard.png", "PNG file to write")
	warm := flag.Duration("warm", 40*time.Second, "how long the workload runs before the picture")
	chromium := flag.String("chromium", "/usr/bin/chromium", "Chromium executable")
	flag.Parse()
	if err := run(*out, *warm, *chromium); err != nil {
		log.Fatal(err)
	}
}

func run(out string, warm time.Duration, chromium string) error {
	dir, err := os.MkdirTemp("", "midstream-screenshot")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := redisserver.Start(redisserver.Config{Dir: dir})
	if err != nil {
		return err
	}
	defer srv.Close()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 32})
	defer rdb.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	if err := workload(ctx, &wg, rdb); err != nil {
		return err
	}

	d, err := dashboard.New(rdb, dashboard.WithSampleInterval(time.Second), dashboard.WithHistory(time.Minute), dashboard.WithWriteActions())
	if err != nil {
		return err
	}
	wg.Go(func() { _ = d.Run(ctx) })
	web := httptest.NewServer(d)
	defer web.Close()
	log.Printf("dashboard on %s; workload runs %s", web.URL, warm)
	time.Sleep(warm)

	actx, cancelA := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.WindowSize(1280, 900), chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"), chromedp.UserDataDir(dir+"/chromium"))...)
	defer cancelA()
	tab, closeTab := chromedp.NewContext(actx)
	defer closeTab()
	tctx, cancelT := context.WithTimeout(tab, 60*time.Second)
	defer cancelT()
	poll := func(expr string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(20*time.Second))
	}
	if err := chromedp.Do(tctx,
		chromedp.Navigate(web.URL+"/"),
		poll(`document.querySelectorAll('#streams tr[data-stream]').length === 4`),
		chromedp.Click(chromedp.CSS(`#streams tr[data-stream="{orders}"]`)),
		poll(`document.querySelectorAll('#groups tr[data-group]').length === 2`),
		chromedp.Click(chromedp.CSS(`#groups tr[data-group="shipping"]`)),
		poll(`document.querySelectorAll('#pending tr').length > 0`),
		chromedp.Click(chromedp.ID("tail-start")),
		poll(`document.getElementById('tail-log').textContent.split('\n').length > 8`),
	); err != nil {
		return fmt.Errorf("browser: %w", err)
	}
	png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		return err
	}
	log.Printf("wrote %s (%d bytes)", out, len(png))
	return nil
}

// workload starts writers and consumer groups that run until ctx ends.
func workload(ctx context.Context, wg *sync.WaitGroup, rdb *redis.Client) error {
	type group struct {
		name string
		// perSec is how many entries it finishes per second; failEvery
		// leaves every n-th entry pending (0: none); dlqEvery dead-letters
		// every n-th (0: none); stallAfter stops acknowledging after that
		// long (0: never).
		perSec              float64
		failEvery, dlqEvery int
		stallAfter          time.Duration
	}
	streams := []struct {
		key    string
		perSec float64
		groups []group
	}{
		{"{orders}", 30, []group{{"billing", 40, 0, 60, 0}, {"shipping", 40, 25, 0, 15 * time.Second}}},
		{"{payments}", 12, []group{{"ledger", 10, 40, 30, 0}}},
		{"{emails}", 6, []group{{"sender", 20, 8, 0, 0}}},
		{"{audit}", 20, nil},
	}
	start := time.Now()
	for _, s := range streams {
		for _, g := range s.groups {
			if err := rdb.XGroupCreateMkStream(ctx, s.key, g.name, "$").Err(); err != nil {
				return err
			}
		}
		wg.Go(func() {
			t := time.NewTicker(time.Duration(float64(time.Second) / s.perSec))
			defer t.Stop()
			for n := 0; ; n++ {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.key, Values: []string{
					"id", fmt.Sprint(n), "user", fmt.Sprintf("u%03d", rand.IntN(500)), "amount", fmt.Sprintf("%.2f", rand.Float64()*100)}})
			}
		})
		q, err := deadletter.New(rdb, s.key)
		if err != nil {
			return err
		}
		for _, g := range s.groups {
			wg.Go(func() {
				t := time.NewTicker(time.Duration(float64(time.Second) / g.perSec))
				defer t.Stop()
				for n := 1; ; n++ {
					select {
					case <-ctx.Done():
						return
					case <-t.C:
					}
					if g.stallAfter > 0 && time.Since(start) > g.stallAfter {
						continue
					}
					res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: g.name, Consumer: fmt.Sprintf("%s-%d", g.name, n%2+1),
						Streams: []string{s.key, ">"}, Count: 1, Block: -1}).Result()
					if err != nil || len(res) == 0 || len(res[0].Messages) == 0 {
						continue
					}
					m := res[0].Messages[0]
					switch {
					case g.dlqEvery > 0 && n%g.dlqEvery == 0:
						fields := map[string]string{}
						for k, v := range m.Values {
							fields[k] = fmt.Sprint(v)
						}
						_, _ = q.Move(ctx, deadletter.MoveRequest{ID: m.ID, Fields: fields, Group: g.name,
							Consumer: fmt.Sprintf("%s-%d", g.name, n%2+1), Reason: "payment provider: 502 Bad Gateway"})
					case g.failEvery > 0 && n%g.failEvery == 0:
						// left pending, as by a crashed handler
					default:
						rdb.XAck(ctx, s.key, g.name, m.ID)
					}
				}
			})
		}
	}
	return nil
}
