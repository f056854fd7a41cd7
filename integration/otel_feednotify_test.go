package integration

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/midstream-go/midstream/feed"
	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/notify"
)

// TestOtelFeedAndNotify: feed and notify calls have spans named after the
// operation and destination, failures mark them, and activities,
// timeline copies and notifications are counted.
func TestOtelFeedAndNotify(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	tp, rec := otelTracing(t)
	mp, reader := otelMetrics(t)
	stream := srv.Key("activity")
	f := newFeed(t, srv, feed.WithFanOutOnWrite(100), feed.WithTracerProvider(tp), feed.WithMeterProvider(mp))
	for _, u := range []string{"b", "c", "d"} {
		if err := f.Follow(ctx, srv.Key(u), srv.Key("a")); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Client.Set(ctx, feed.TimelineKey(srv.Key("d")), "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Append(ctx, srv.Key("a"), nil); err == nil {
		t.Fatal("Append into a wrong-typed timeline succeeded")
	}
	prefix := srv.Key("notifications:")
	n := newNotifier(t, srv, notify.WithTracerProvider(tp), notify.WithMeterProvider(mp))
	id := mustSendContent(t, n, "u", "x")
	if err := n.MarkRead(ctx, "u", id); err != nil {
		t.Fatal(err)
	}
	if _, err := n.UnreadCount(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.List(ctx, "u", "", 5); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		name   string
		kind   trace.SpanKind
		failed bool
	}{
		{"append " + stream, trace.SpanKindProducer, true},
		{"send " + prefix, trace.SpanKindProducer, false},
		{"mark_read " + prefix, trace.SpanKindProducer, false},
		{"unread_count " + prefix, trace.SpanKindClient, false},
		{"list " + prefix, trace.SpanKindClient, false},
	} {
		spans := otelSpans(rec, want.name)
		if len(spans) != 1 {
			t.Fatalf("%d spans %q", len(spans), want.name)
		}
		s := spans[0]
		if s.SpanKind() != want.kind || (s.Status().Code == codes.Error) != want.failed {
			t.Errorf("span %q: kind %v status %v", want.name, s.SpanKind(), s.Status())
		}
		if v, ok := otelAttr(s, "messaging.system"); !ok || v.AsString() != "redis" {
			t.Errorf("span %q: messaging.system %v", want.name, v)
		}
	}
	ms := otelCollect(t, reader)
	if v, _ := otelInt(ms, "midstream.messages.published", attribute.String("messaging.destination.name", stream)); v != 1 {
		t.Errorf("activities published: %d, want 1", v)
	}
	if v, _ := otelInt(ms, "midstream.feed.copied", attribute.String("messaging.destination.name", stream)); v != 2 {
		t.Errorf("timeline copies: %d, want 2", v)
	}
	if v, _ := otelInt(ms, "midstream.messages.published", attribute.String("messaging.destination.name", prefix)); v != 1 {
		t.Errorf("notifications published: %d, want 1", v)
	}
}
