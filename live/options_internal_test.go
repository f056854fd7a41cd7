package live

import (
	"testing"
	"time"
)

// TestZeroMeansDefault: an option given its zero value leaves the
// configuration as no option does, also after a non-zero value.
func TestZeroMeansDefault(t *testing.T) {
	c := config{pageSize: DefaultPageSize, poll: DefaultPollInterval}
	for _, o := range []Option{WithPageSize(7), WithPageSize(0), WithPollInterval(time.Minute), WithPollInterval(0)} {
		o(&c)
	}
	if len(c.errs) != 0 || c.pageSize != DefaultPageSize || c.poll != DefaultPollInterval {
		t.Fatalf("config %+v, want the defaults", c)
	}
}
