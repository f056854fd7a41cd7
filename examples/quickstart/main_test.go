package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestQuickstart runs the program the README tells newcomers to run.
func TestQuickstart(t *testing.T) {
	t.Setenv("REDIS_URL", "") // always the embedded server here
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("quickstart: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"published 1 event", "published 3 more in one pipeline", "refused an oversized entry",
		"failed", "(user 456 purchase, delivery 1): payment service timed out",
		"delivered 1 time(s)", "(user 456 purchase, delivery 2)", "handled 4 entries; 0 pending",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
