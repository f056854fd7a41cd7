#!/usr/bin/env bash
# Regenerates docs/dashboard.png, the README's picture of the dashboard: a
# redis-server with a small simulated workload, the dashboard on it, a
# screenshot in headless Chromium (apt packages redis-server and chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./cmd/midstream/internal/screenshot -o docs/dashboard.png "$@"
