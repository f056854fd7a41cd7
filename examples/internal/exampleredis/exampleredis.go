// Package exampleredis gives the example programs a Redis server: the one at
// REDIS_URL when it is set, otherwise an embedded miniredis.
package exampleredis

import (
	"context"
	"fmt"
	"os"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Connect returns a client, a line saying which server it talks to, and a
// function that closes both.
func Connect(ctx context.Context) (*redis.Client, string, func(), error) {
	if url := os.Getenv("REDIS_URL"); url != "" {
		opts, err := redis.ParseURL(url)
		if err != nil {
			return nil, "", nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		rdb := redis.NewClient(opts)
		if err := rdb.Ping(ctx).Err(); err != nil {
			rdb.Close()
			return nil, "", nil, fmt.Errorf("REDIS_URL %s: %w", opts.Addr, err)
		}
		return rdb, "Redis at " + opts.Addr + " (REDIS_URL)", func() { rdb.Close() }, nil
	}
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		return nil, "", nil, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	return rdb, "embedded miniredis at " + mr.Addr() + " (set REDIS_URL to use a real server)", func() {
		rdb.Close()
		mr.Close()
	}, nil
}
