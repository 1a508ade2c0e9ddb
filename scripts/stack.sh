#!/usr/bin/env bash
# The local stack: a local etcd, the router, and two example backends announced
# in etcd. Installs what it needs first. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh stack
export PATH="$PWD/node_modules/.bin:$PATH"
exec node scripts/stack.ts "$@"
