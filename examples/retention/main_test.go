package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestRetention runs the program: the trimmer holds events back for the
// lagging group, for its pending events and then its undelivered ones, and
// trims to the policy once it has caught up. With REDIS_URL set it runs on
// that server, otherwise on the embedded miniredis.
func TestRetention(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("retention: %v\n%s", err, out.String())
	}
	want := []string{
		"published 1000 events",
		"neither group has read anything yet:\n  trimmer: trimmed 0, 1000 left; held back 900 for indexer (undelivered, from event #1), mailer (undelivered, from event #1)\n",
		"indexer handles all 1000 events:\n  trimmer: trimmed 0, 1000 left; held back 900 for mailer (undelivered, from event #1)\n",
		"mailer-1 reads 300 events, acknowledges 250 and stalls:\n  trimmer: trimmed 250, 750 left; held back 650 for mailer (pending, from event #251)\n",
		"mailer-1 acknowledges the 50 it still held:\n  trimmer: trimmed 50, 700 left; held back 600 for mailer (undelivered, from event #301)\n",
		"mailer catches up:\n  trimmer: trimmed 600, 100 left; nothing held back\n",
	}
	for _, w := range want {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
}
