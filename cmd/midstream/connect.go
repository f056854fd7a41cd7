package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"
)

// connect returns the client the flags describe, connected (PING).
func (a *app) connect(ctx context.Context) (redis.UniversalClient, error) {
	if a.client != nil {
		return a.client, nil
	}
	c, err := a.newClient()
	if err != nil {
		return nil, usageError{err}
	}
	// Dials, reads and writes are bounded by --timeout already; a deadline
	// here would hide the reason a dial failed.
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("connect to %s: %w", a.where(), err)
	}
	a.client = c
	return c, nil
}

// connectFor checks a stream name argument, then connects.
func (a *app) connectFor(ctx context.Context, stream string) (redis.UniversalClient, error) {
	if err := checkStream(stream); err != nil {
		return nil, err
	}
	return a.connect(ctx)
}

func (a *app) newClient() (redis.UniversalClient, error) {
	password := a.password
	if password == "" {
		password = os.Getenv("REDIS_PASSWORD")
	}
	var tlsConf *tls.Config
	if a.tls {
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	modes := 0
	for _, set := range []bool{a.url != "", len(a.cluster) > 0, a.sentinelMaster != "" || len(a.sentinels) > 0} {
		if set {
			modes++
		}
	}
	if modes > 1 {
		return nil, fmt.Errorf("--url, --cluster and --sentinel exclude each other")
	}
	switch {
	case len(a.cluster) > 0:
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: a.cluster, Username: a.user, Password: password,
			TLSConfig: tlsConf, DialTimeout: a.timeout, ReadTimeout: a.timeout, WriteTimeout: a.timeout}), nil
	case a.sentinelMaster != "" || len(a.sentinels) > 0:
		if a.sentinelMaster == "" || len(a.sentinels) == 0 {
			return nil, fmt.Errorf("sentinel: set both --sentinel-master and --sentinel")
		}
		return redis.NewFailoverClient(&redis.FailoverOptions{MasterName: a.sentinelMaster, SentinelAddrs: a.sentinels,
			Username: a.user, Password: password, TLSConfig: tlsConf, DialTimeout: a.timeout, ReadTimeout: a.timeout, WriteTimeout: a.timeout}), nil
	}
	url := a.url
	if url == "" {
		url = os.Getenv("REDIS_URL")
	}
	if url == "" {
		url = "redis://127.0.0.1:6379"
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("--url: %w", err)
	}
	if a.user != "" {
		opts.Username = a.user
	}
	if password != "" {
		opts.Password = password
	}
	if a.tls && opts.TLSConfig == nil {
		opts.TLSConfig = tlsConf
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = a.timeout, a.timeout, a.timeout
	return redis.NewClient(opts), nil
}

// where names the server(s) the flags point at, for errors.
func (a *app) where() string {
	switch {
	case len(a.cluster) > 0:
		return "cluster " + strings.Join(a.cluster, ",")
	case a.sentinelMaster != "":
		return "sentinel master " + a.sentinelMaster
	}
	u := a.url
	if u == "" {
		u = os.Getenv("REDIS_URL")
	}
	if opts, err := redis.ParseURL(u); err == nil {
		return opts.Addr
	}
	return "127.0.0.1:6379"
}
