package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/midstream-go/midstream/integration/redistest"
	"github.com/midstream-go/midstream/internal/ops/opstest"
)

// startDashboard runs `midstream dashboard` in-process on a free loopback
// port and returns its base URL; it stops when the test ends.
func startDashboard(t *testing.T, url string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		code := run(ctx, append([]string{"--url", url, "dashboard", "--listen", "127.0.0.1:0"}, args...), strings.NewReader(""), io.Discard, pw)
		pw.Close()
		done <- code
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("dashboard exited %d", code)
			}
		case <-time.After(10 * time.Second):
			t.Error("dashboard did not stop")
		}
	})
	r := bufio.NewReader(pr)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, r) }() // its log
	m := regexp.MustCompile(`on (http://\S+)/ `).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("dashboard said %q", line)
	}
	return m[1]
}

func TestDashboardMetrics(t *testing.T) {
	srv := redistest.Start(t)
	stream := srv.Key("{orders}")
	opstest.Build(t, srv.Client, stream)
	pattern := strings.TrimSuffix(stream, "{orders}") + "*"
	base := startDashboard(t, serverURL(srv), "--pattern", pattern)

	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", res.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	value := func(name, group string) float64 {
		t.Helper()
		f, ok := fams[name]
		if !ok {
			t.Fatalf("no %s in /metrics", name)
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["messaging_destination_name"] == stream && (group == "" || labels["messaging_consumer_group_name"] == group) {
				return gauge(m)
			}
		}
		t.Fatalf("%s: no series for %s %s", name, stream, group)
		return 0
	}
	for _, c := range []struct {
		name, group string
		want        float64
	}{
		{"midstream_stream_length", "", 10},
		{"midstream_deadletter_depth", "", 3},
		{"midstream_group_lag", "billing", 5},
		{"midstream_group_lag", "ship", 8},
		{"midstream_group_pending", "billing", 2},
		{"midstream_group_pending", "ship", 1},
		{"midstream_group_consumers", "billing", 1},
	} {
		if got := value(c.name, c.group); got != c.want {
			t.Errorf("%s{%s} = %v, want %v", c.name, c.group, got, c.want)
		}
	}
	if age := value("midstream_group_pending_oldest_age_seconds", "billing"); age <= 0 || age > 60 {
		t.Errorf("oldest pending age %v s", age)
	}

	// The page is there; a name that is not loopback is refused (DNS
	// rebinding).
	if res, err := http.Get(base + "/"); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("page: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/api/overview", nil)
	req.Host = "evil.example"
	res2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
	if res2.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("foreign Host: %s", res2.Status)
	}
}

func gauge(m *dto.Metric) float64 {
	if g := m.GetGauge(); g != nil {
		return g.GetValue()
	}
	return m.GetUntyped().GetValue()
}

// TestMetricsFollowTheStreams: a refresh registers the gauges of streams
// that appeared and drops those of streams that went.
func TestMetricsFollowTheStreams(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a, b := srv.Key("{a}"), srv.Key("{b}")
	srv.Client.XAdd(ctx, &redis.XAddArgs{Stream: a, Values: []string{"k", "v"}})
	m, err := newMetrics(srv.Client, []string{strings.TrimSuffix(a, "{a}") + "*"}, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer m.shutdown(ctx)
	lengths := func() map[string]float64 {
		t.Helper()
		if err := m.refresh(ctx); err != nil {
			t.Fatal(err)
		}
		fams, err := m.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, f := range fams {
			if f.GetName() != "midstream_stream_length" {
				continue
			}
			for _, s := range f.GetMetric() {
				for _, l := range s.GetLabel() {
					if l.GetName() == "messaging_destination_name" {
						got[l.GetValue()] = gauge(s)
					}
				}
			}
		}
		return got
	}
	if got := lengths(); len(got) != 1 || got[a] != 1 {
		t.Fatalf("one stream: %v", got)
	}
	srv.Client.XAdd(ctx, &redis.XAddArgs{Stream: b, Values: []string{"k", "v"}})
	srv.Client.XAdd(ctx, &redis.XAddArgs{Stream: b, Values: []string{"k", "v"}})
	if got := lengths(); len(got) != 2 || got[b] != 2 {
		t.Fatalf("two streams: %v", got)
	}
	srv.Client.Del(ctx, a)
	if got := lengths(); len(got) != 1 || got[b] != 2 {
		t.Fatalf("after a deletion: %v", got)
	}
}

// TestDashboardStops: cancelling the command's context stops the server,
// its sampler and its metrics loop, leaving no goroutine behind, also with
// a live tail open.
func TestDashboardStops(t *testing.T) {
	srv := redistest.Start(t)
	stream := srv.Key("{s}")
	srv.Client.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, Values: []string{"k", "v"}})
	before := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--url", serverURL(srv), "dashboard", "--listen", "127.0.0.1:0", "--interval", "100ms"}, strings.NewReader(""), io.Discard, pw)
		pw.Close()
	}()
	r := bufio.NewReader(pr)
	line, _ := r.ReadString('\n')
	go func() { _, _ = io.Copy(io.Discard, r) }()
	m := regexp.MustCompile(`on (http://\S+)/ `).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("dashboard said %q", line)
	}
	res, err := http.Get(m[1] + "/api/tail?stream=" + url.QueryEscape(stream))
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("tail: %v %v", res, err)
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the dashboard did not stop")
	}
	res.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	goleak.VerifyNone(t, before)
}
