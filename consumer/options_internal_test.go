package consumer

import (
	"testing"
	"time"
)

// TestZeroMeansDefault: every option given its zero value leaves the
// effective configuration exactly as no option does, also after a non-zero
// value of the same option (the last one wins).
func TestZeroMeansDefault(t *testing.T) {
	none, err := newConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		set, zero Option
	}{
		{"WithName", WithName("w"), WithName("")},
		{"WithStart", WithStart(StartBeginning), WithStart("")},
		{"WithConcurrency", WithConcurrency(3), WithConcurrency(0)},
		{"WithBatchSize", WithBatchSize(3), WithBatchSize(0)},
		{"WithMaxInFlight", WithMaxInFlight(3000), WithMaxInFlight(0)},
		{"WithBlock", WithBlock(time.Second), WithBlock(0)},
		{"WithHandlerTimeout", WithHandlerTimeout(time.Second), WithHandlerTimeout(0)},
		{"WithShutdownTimeout", WithShutdownTimeout(time.Second), WithShutdownTimeout(0)},
		{"WithAcks", WithAcks(3, time.Millisecond), WithAcks(0, 0)},
		{"WithMinIdle", WithMinIdle(time.Second), WithMinIdle(0)},
		{"WithClaimInterval", WithClaimInterval(time.Second), WithClaimInterval(0)},
		{"WithRetryBackoff", WithRetryBackoff(time.Second), WithRetryBackoff(0)},
		{"WithMaxDeliveries", WithMaxDeliveries(3), WithMaxDeliveries(0)},
		{"WithMaxEntrySize", WithMaxEntrySize(3), WithMaxEntrySize(0)},
		{"WithConsumerCleanup", WithConsumerCleanup(time.Minute), WithConsumerCleanup(0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, opts := range [][]Option{{tt.zero}, {tt.set, tt.zero}} {
				got, err := newConfig(opts)
				if err != nil {
					t.Fatal(err)
				}
				got.name, none.name = "", "" // the default name is unique per config
				if !equalConfig(got, none) {
					t.Errorf("config %+v, want the defaults %+v", got, none)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c, err := newConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		start:           StartBeginning,
		concurrency:     DefaultConcurrency,
		batchSize:       DefaultBatchSize,
		maxInFlight:     2 * DefaultBatchSize,
		block:           DefaultBlock,
		shutdownTimeout: DefaultShutdownTimeout,
		ackBatch:        DefaultAckBatch,
		ackInterval:     DefaultAckInterval,
		minIdle:         DefaultMinIdle,
		claimInterval:   DefaultClaimInterval,
		maxBackoff:      DefaultMaxRetryBackoff,
		maxDeliveries:   DefaultMaxDeliveries,
		maxEntrySize:    DefaultMaxEntrySize,
		consumerIdle:    DefaultConsumerIdleTime,
	}
	c.name = ""
	if !equalConfig(c, want) {
		t.Fatalf("defaults %+v, want %+v", c, want)
	}
}

// TestDerivedMaxInFlight: the default in-flight bound follows the batch
// size and concurrency and stays within MaxInFlight at their bounds.
func TestDerivedMaxInFlight(t *testing.T) {
	tests := []struct {
		opts []Option
		want int
	}{
		{[]Option{WithBatchSize(1), WithConcurrency(50)}, 50},
		{[]Option{WithBatchSize(40), WithConcurrency(50)}, 80},
		{[]Option{WithBatchSize(MaxBatchSize), WithConcurrency(MaxConcurrency)}, 2 * MaxBatchSize},
	}
	for _, tt := range tests {
		c, err := newConfig(tt.opts)
		if err != nil {
			t.Fatal(err)
		}
		if c.maxInFlight != tt.want || c.maxInFlight > MaxInFlight {
			t.Errorf("max in flight %d, want %d", c.maxInFlight, tt.want)
		}
	}
	if 2*MaxBatchSize > MaxInFlight || MaxConcurrency > MaxInFlight {
		t.Fatal("the derived in-flight bound can exceed MaxInFlight")
	}
}

// TestDerivedClaimInterval: the default claim interval is never longer
// than the minimum idle time.
func TestDerivedClaimInterval(t *testing.T) {
	c, err := newConfig([]Option{WithMinIdle(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if c.claimInterval != time.Second {
		t.Fatalf("claim interval %s, want 1s", c.claimInterval)
	}
}

// equalConfig compares the scalar settings of two configs.
func equalConfig(a, b config) bool {
	a.errs, b.errs = nil, nil
	return a.name == b.name && a.start == b.start && a.concurrency == b.concurrency &&
		a.batchSize == b.batchSize && a.maxInFlight == b.maxInFlight && a.block == b.block &&
		a.handlerTimeout == b.handlerTimeout && a.shutdownTimeout == b.shutdownTimeout &&
		a.ackBatch == b.ackBatch && a.ackInterval == b.ackInterval && a.minIdle == b.minIdle &&
		a.claimInterval == b.claimInterval && a.maxBackoff == b.maxBackoff &&
		a.maxDeliveries == b.maxDeliveries && a.maxEntrySize == b.maxEntrySize &&
		a.consumerIdle == b.consumerIdle
}
