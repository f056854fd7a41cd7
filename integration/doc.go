// Package integration holds midstream's tests against a real Redis server.
// Every guarantee midstream makes is tested here; the servers come from
// package redistest (a spawned redis-server, testcontainers-go, or REDIS_URL).
//
//	go test -race ./integration/...
//
// With MIDSTREAM_REQUIRE_REDIS=1 (as in CI) a missing server fails the tests
// instead of skipping them.
package integration
