#!/usr/bin/env bash
# Start a local Docker engine if none is reachable, then build the Redis test
# image (redis-image.sh).
#
# The engine runs without a bridge network or iptables rules: containers use
# host networking only, and nothing is pulled from a registry.
#
# Usage: .ci/docker.sh [image-tag]
# Env:   DOCKERD_LOG      engine log file (default /tmp/dockerd.log)
#        DOCKERD_TIMEOUT  seconds to wait for the engine (default 60)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
log=${DOCKERD_LOG:-/tmp/dockerd.log}
timeout=${DOCKERD_TIMEOUT:-60}

# wait_engine waits until `docker info` answers or dockerd ($1) dies.
wait_engine() {
	local pid=$1 deadline=$((SECONDS + timeout))
	while ((SECONDS < deadline)); do
		if docker info >/dev/null 2>&1; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			return 1
		fi
		sleep 0.5
	done
	return 1
}

# start_engine starts dockerd with extra flags "$@" and waits for it; on
# failure it stops that dockerd and returns non-zero.
start_engine() {
	echo "docker.sh: starting dockerd${*:+ $*} (log: $log)" >&2
	setsid nohup dockerd --bridge=none --iptables=false --ip6tables=false "$@" \
		>>"$log" 2>&1 </dev/null &
	local pid=$!
	if wait_engine "$pid"; then
		echo "docker.sh: engine up (pid $pid, storage driver $(docker info -f '{{.Driver}}'))" >&2
		return 0
	fi
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
	kill -9 "$pid" 2>/dev/null || true
	return 1
}

if docker info >/dev/null 2>&1; then
	echo "docker.sh: engine already reachable" >&2
elif ! start_engine && ! start_engine --storage-driver=vfs; then
	echo "docker.sh: dockerd did not come up (waited up to ${timeout}s per try); last log lines:" >&2
	tail -n 30 "$log" >&2
	exit 1
fi

exec "$here/redis-image.sh" "$@"
