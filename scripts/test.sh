#!/usr/bin/env bash
# The whole test suite: installs what it needs, type-checks, then runs every
# test against real components (etcd, HTTP backends, the router process).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
export PATH="$PWD/node_modules/.bin:$PATH"
echo "test: type check (tsc --noEmit)" >&2
tsc --noEmit -p .
echo "test: node --test ($(node --version))" >&2
# Files run one at a time: several tests measure latency and must not share 2 cores with a 1 GiB stream.
exec node --test --test-concurrency=1 --test-timeout=120000 "test/**/*.test.ts"
