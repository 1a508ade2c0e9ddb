#!/usr/bin/env bash
# The benchmark (bench/): Tug's router against nginx and HAProxy on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh bench
export PATH="$PWD/node_modules/.bin:$PATH"
# 10k idle client connections need the descriptors.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
exec node bench/main.ts "$@"
