#!/usr/bin/env bash
# Build a minimal local Redis image for the testcontainers backend of
# integration/redistest, without pulling anything: the host's redis-server
# binary and the shared libraries it links are packed into a rootfs tarball
# and loaded with `docker import`.
#
# Usage: .ci/redis-image.sh [tag]     (default tag: midstream-redis:local)
# Env:   REDIS_SERVER  binary to pack (default /usr/bin/redis-server)
#
# It does nothing if the image already exists.
set -euo pipefail

tag=${1:-midstream-redis:local}
bin=${REDIS_SERVER:-/usr/bin/redis-server}

if docker image inspect "$tag" >/dev/null 2>&1; then
	echo "redis-image.sh: $tag already exists" >&2
	exit 0
fi
if [[ ! -x $bin ]]; then
	echo "redis-image.sh: $bin not found (apt-get install redis-server)" >&2
	exit 1
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

# put copies file $1 (following symlinks) to the same path under the rootfs.
put() {
	mkdir -p "$root$(dirname "$1")"
	cp -L "$1" "$root$1"
}

# The binary, under the name redis-server: on Debian it is a symlink to
# redis-check-rdb, and Redis picks its mode from argv[0].
mkdir -p "$root/usr/bin"
cp -L "$bin" "$root/usr/bin/redis-server"

# Shared libraries and the dynamic loader, at the paths ldd resolves them to.
libs=$(ldd "$bin")
if grep -q 'not found' <<<"$libs"; then
	echo "redis-image.sh: unresolved libraries:" >&2
	grep 'not found' <<<"$libs" >&2
	exit 1
fi
for lib in $(grep -o '/[^ ]*' <<<"$libs"); do
	put "$lib"
done

# Minimal filesystem: data and temp directories, mount points, and the /etc
# files a process may read to name root.
mkdir -p "$root"/{data,tmp,etc,dev,proc,sys}
chmod 1777 "$root/tmp"
echo 'root:x:0:0:root:/data:/usr/sbin/nologin' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
: >"$root/etc/hosts"
: >"$root/etc/resolv.conf"

tar -C "$root" --numeric-owner --owner=0 --group=0 -c . |
	docker import \
		--change 'ENTRYPOINT ["/usr/bin/redis-server"]' \
		--change 'CMD ["--bind", "127.0.0.1", "--dir", "/data"]' \
		--change 'WORKDIR /data' \
		--message "redis-server from $bin ($("$bin" --version | head -n 1))" \
		- "$tag" >/dev/null

echo "redis-image.sh: built $tag ($(docker image inspect -f '{{.Size}}' "$tag") bytes)" >&2
