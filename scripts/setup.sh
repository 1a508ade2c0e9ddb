#!/usr/bin/env bash
# Installs what Tug's scripts need on a Debian 12 machine that has Node and npm:
# the npm packages (which bring Node 26 for the project's own scripts) and the
# Debian packages the router, the local stack and the tests use. Safe to re-run.
# Usage: scripts/setup.sh [stack|test|bench]
set -euo pipefail
cd "$(dirname "$0")/.."
purpose="${1:-test}"

# Debian packages by the command they provide.
declare -A packages=(
  [etcd]=etcd-server
  [etcdctl]=etcd-client
  [curl]=curl
  [pgrep]=procps
  [skopeo]=skopeo
  [podman]=podman
  [docker-registry]=docker-registry
  [systemd-analyze]=systemd
  [promtool]=prometheus
  [openssl]=openssl
  [ip]=iproute2
  [chromium]=chromium
  [pebble]=pebble
)

if [[ $purpose == bench ]]; then
  packages[nginx]=nginx
  packages[wrk]=wrk
  packages[h2load]=nghttp2-client
  packages[haproxy]=haproxy
fi

missing=()
for cmd in "${!packages[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${packages[$cmd]}")
done

if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The tests run distribution themselves; Debian's package also starts it as a
    # service on :5000, the port `tug registry` listens on by default.
    # Debian starts these as services on ports Tug uses by default (the registry's :5000, the
    # router admin's :9090); the tests and the stack start their own, so turn the services off.
    if command -v systemctl >/dev/null 2>&1; then
      for pkg in docker-registry prometheus; do
        if [[ " ${missing[*]} " == *" $pkg "* ]]; then systemctl disable --now "$pkg.service" >/dev/null 2>&1 || true; fi
      done
    fi
  else
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

# npm ci when node_modules is missing or older than the lock file.
if [[ ! -x node_modules/.bin/node || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "setup: installing npm packages (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi

node_version=$(node_modules/.bin/node --version)
if [[ $node_version != v26.* ]]; then
  echo "setup: expected Node 26 from the 'node' devDependency, found $node_version" >&2
  exit 1
fi
