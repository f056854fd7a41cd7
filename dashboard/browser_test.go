package dashboard_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/midstream-go/midstream/dashboard"
	"github.com/midstream-go/midstream/deadletter"
)

const chromiumPath = "/usr/bin/chromium" // Debian's package "chromium"

// EnvScreenshot names a file TestBrowser writes a PNG screenshot of the
// dashboard to (the README's; see scripts/dashboard-screenshot.sh).
const EnvScreenshot = "MIDSTREAM_SCREENSHOT"

// TestBrowser drives the dashboard in headless Chromium over a real server:
// the overview shows the real lag and dead-letter depth; a redrive without
// the write token is refused and moves nothing; with it, the redrive button
// moves the selected entry and the page updates.
func TestBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("MIDSTREAM_REQUIRE_BROWSER") == "1" {
			t.Fatalf("MIDSTREAM_REQUIRE_BROWSER=1 but %s is missing (apt-get install chromium): %v", chromiumPath, err)
		}
		t.Skipf("%s is missing (apt-get install chromium); set MIDSTREAM_REQUIRE_BROWSER=1 to fail instead", chromiumPath)
	}
	e := newEnv(t, dashboard.WithWriteActions(), dashboard.WithToken("s3cret"))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second) // hang guard
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.WindowSize(1280, 1000),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.UserDataDir(t.TempDir()),
	)...)
	defer cancelAlloc()
	var (
		logMu sync.Mutex
		log   bytes.Buffer
	)
	defer func() {
		if t.Failed() {
			logMu.Lock()
			t.Logf("browser log:\n%s", log.String())
			logMu.Unlock()
		}
	}()
	tab, closeTab := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(format string, args ...any) {
		logMu.Lock()
		fmt.Fprintf(&log, format+"\n", args...)
		logMu.Unlock()
	}))
	defer closeTab()
	poll := func(expr string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(20*time.Second))
	}
	row := `document.querySelector('#streams tr[data-stream]')`
	cell := func(cls string) string { return row + `.querySelector('td.` + cls + ` span.v').textContent` }

	if err := chromedp.Do(tab,
		chromedp.Navigate(e.srv.URL+"/"),
		poll(row+` !== null`),
		poll(cell("lag")+` === "8" && `+cell("dlq")+` === "3" && `+cell("pending")+` === "3"`),
	); err != nil {
		t.Fatalf("overview: %v", err)
	}

	// Open the stream; three dead letters are listed.
	dlqRows := `document.querySelectorAll('#dlq tr[data-id]').length`
	first := `document.querySelector('#dlq tr[data-id] input[type=checkbox]')`
	if err := chromedp.Do(tab,
		chromedp.Click(chromedp.CSS(`#streams tr[data-stream]`)),
		poll(dlqRows+` === 3`),
		poll(`document.querySelectorAll('#groups tr[data-group]').length === 2`),
	); err != nil {
		t.Fatalf("stream page: %v", err)
	}

	// Without the token the write is refused.
	if err := chromedp.Do(tab,
		chromedp.Click(chromedp.CSS(`#dlq tr[data-id] input[type=checkbox]`)),
		poll(`!document.getElementById('redrive').disabled`),
		chromedp.Click(chromedp.ID("redrive")),
		poll(`document.getElementById('message').className === 'error' && document.getElementById('message').textContent.includes('bearer token')`),
		poll(dlqRows+` === 3`),
	); err != nil {
		t.Fatalf("redrive without the token: %v", err)
	}
	if n := e.dlqLen(t); n != 3 {
		t.Fatalf("a refused redrive moved entries: %d dead letters left", n)
	}

	// With it, the selected entry goes back and the page follows.
	if err := chromedp.Do(tab,
		chromedp.SendKeys(chromedp.ID("token"), "s3cret"),
		chromedp.Poll[chromedp.Void](`document.getElementById('token').dispatchEvent(new Event('change'))`),
		poll(first+` !== null`),
		chromedp.Click(chromedp.CSS(`#dlq tr[data-id] input[type=checkbox]`)),
		poll(`!document.getElementById('redrive').disabled`),
		chromedp.Click(chromedp.ID("redrive")),
		poll(`document.getElementById('message').className === 'ok'`),
		poll(dlqRows+` === 2`),
		poll(cell("dlq")+` === "2"`),
	); err != nil {
		t.Fatalf("redrive with the token: %v", err)
	}
	if n := e.dlqLen(t); n != 2 {
		t.Fatalf("dead letters after the redrive: %d", n)
	}
	// Back to its group only: the group's redrive stream, not the stream.
	if n := e.rdb.XLen(ctx, e.stream).Val(); n != 10 {
		t.Fatalf("stream length after the redrive: %d", n)
	}
	if n := e.rdb.XLen(ctx, deadletter.RedriveKey(e.stream, "billing")).Val() + e.rdb.XLen(ctx, deadletter.RedriveKey(e.stream, "ship")).Val(); n != 1 {
		t.Fatalf("redrive streams hold %d entries after the redrive, want 1", n)
	}

	if path := os.Getenv(EnvScreenshot); path != "" {
		png, err := chromedp.Run(tab, chromedp.FullScreenshot(100)) // quality 100: PNG
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot written to %s", path)
	}
}
