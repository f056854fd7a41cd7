package producer

import (
	"context"
	"github.com/midstream-go/midstream/internal/telemetry"
	"testing"
)

// TestObserveOffAllocatesNothing checks the zero cost of observability while
// the global providers are unset (as in this test binary).
func TestObserveOffAllocatesNothing(t *testing.T) {
	o := newObserver(telemetry.Providers{}, "s")
	ctx := context.Background()
	headers := []string{"header:a", "1"}
	allocs := testing.AllocsPerRun(1000, func() {
		sctx, span := o.start(ctx, 0)
		if span != nil || sctx != ctx {
			t.Fatal("a span while tracing is off")
		}
		if h := o.inject(sctx, span, headers); len(h) != 2 {
			t.Fatal("injected while tracing is off")
		}
		o.endOne(span, "1-1", nil)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per publish with observability off, want 0", allocs)
	}
}
