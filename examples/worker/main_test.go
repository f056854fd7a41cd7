package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/midstream-go/midstream/integration/redistest"
)

// checkOutput checks the lines that tell the story: three failed
// deliveries, the dead-letter entry with its provenance, the redrive to
// billing, the redriven order handled there, and the email group that saw
// each order once.
func checkOutput(t *testing.T, out string) {
	t.Helper()
	for _, want := range []string{
		"published 4 orders",
		"order 1 handled", "order 2 handled", "order 4 handled",
		"order 3 failed (delivery 1 of 3): currency XTS not supported",
		"order 3 failed (delivery 2 of 3): currency XTS not supported",
		"order 3 failed (delivery 3 of 3): currency XTS not supported",
		":dlq holds 1 entry:",
		": order 3, 99 XTS",
		"group billing, consumer worker-1, original ID ",
		"after 3 deliveries: handler failed 3 times (limit 3): currency XTS not supported",
		"pending in the group: 0",
		"redriven 1, skipped 0",
		"order 3 handled: 99.00 XTS (delivery 1)",
		"done: 4 orders handled, 3 failed calls, 2 reclaimed, 1 dead-lettered; 0 pending, 0 in the dead-letter stream",
		":midstream:redrive:billing",
		"email sent 4 confirmations; order 3's 1 time(s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "delivery 4") {
		t.Errorf("order 3 delivered past the limit:\n%s", out)
	}
	// The redrive line names the dead-letter entry listed above.
	m := regexp.MustCompile(`(?m)^  (\d+-\d+): order 3`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "  "+m[1]+" -> ") {
		t.Errorf("the redriven entry is not the one listed:\n%s", out)
	}
	// Order 3 is handled only after the redrive.
	if i, j := strings.Index(out, "redriven 1"), strings.Index(out, "order 3 handled"); i < 0 || j < i {
		t.Errorf("order 3 handled before the redrive:\n%s", out)
	}
}

// TestWorker runs the example on the embedded miniredis.
func TestWorker(t *testing.T) {
	t.Setenv("REDIS_URL", "") // always the embedded server here
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("worker: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "using embedded miniredis") {
		t.Errorf("not on the embedded server:\n%s", out.String())
	}
	checkOutput(t, out.String())
}

// TestWorkerRealRedis runs the example on a real Redis server (see package
// redistest: REDIS_URL, a redis-server binary, or Docker).
func TestWorkerRealRedis(t *testing.T) {
	srv := redistest.Start(t)
	url := os.Getenv(redistest.EnvURL)
	if srv.Backend != "url" {
		url = "redis://" + srv.Addr()
	}
	t.Setenv("REDIS_URL", url)
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("worker: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "(REDIS_URL)") {
		t.Errorf("not on the real server:\n%s", out.String())
	}
	checkOutput(t, out.String())
}
