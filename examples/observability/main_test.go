package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
)

// TestObservability runs the example and checks that a publish span and the
// consumer span of the same entry are in one trace, parent and child across
// Redis, and that the metrics were scraped from the Prometheus endpoint.
func TestObservability(t *testing.T) {
	t.Setenv("REDIS_URL", "") // always the embedded server here
	var out bytes.Buffer
	if err := run(context.Background(), &out, options{promAddr: "127.0.0.1:0", json: true}); err != nil {
		t.Fatalf("observability: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{
		"traceparent:00-", "Prometheus endpoint: http://127.0.0.1:",
		"midstream_messages_published_total", "midstream_messages_processed_total", "midstream_messages_dead_lettered_total",
		"midstream_messages_reclaimed_total", "midstream_handler_duration_seconds_count", "midstream_group_pending",
		"health of {orders-", "dead_letter {orders-", "charge order-1", `"Name":"process {orders-`, "metrics (stdout exporter):",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// order-1's trace: checkout → publish → process (remote parent = the publish span) → charge.
	re := regexp.MustCompile(`(?m)^\s+publish \{orders-\d+\} \[producer\] span ([0-9a-f]{16}), entry (\S+)\n\s+process \{orders-\d+\} \[consumer\] span [0-9a-f]{16}, parent ([0-9a-f]{16}) read from the entry's traceparent, entry (\S+), delivery 1\n\s+charge order-1`)
	m := re.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no publish → process → charge chain for order-1:\n%s", s)
	}
	if m[1] != m[3] || m[2] != m[4] {
		t.Errorf("process span's parent %s / entry %s, want publish span %s / entry %s", m[3], m[4], m[1], m[2])
	}
	if t.Failed() {
		t.Log(s)
	}
}
