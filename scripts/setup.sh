#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine: the real database servers the
# tests start as throwaway instances (PostgreSQL, MariaDB), openssl for test certificates,
# Node.js when Debian's own is recent enough, and the pinned npm dependencies. Non-interactive
# (no stdin needed); safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_MIN=20.19 # package.json "engines"
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); else SUDO=(); fi
apt_get() {
  # Waits for another apt/dpkg (e.g. unattended-upgrades on a fresh VM) instead of failing.
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq -y -o DPkg::Lock::Timeout=600 \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" </dev/null
}
node_ok() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
    node -e 'const [a, b] = process.versions.node.split(".").map(Number); const [x, y] = process.argv[1].split(".").map(Number); process.exit(a > x || (a === x && b >= y) ? 0 : 1)' "$NODE_MIN"
}

need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
{ command -v mariadb-install-db && { command -v mariadbd || [ -x /usr/sbin/mariadbd ]; }; } >/dev/null 2>&1 || need+=(mariadb-server)

if [ "${#need[@]}" -gt 0 ] || ! node_ok; then
  echo "setup: apt-get update"
  apt_get update
fi
if ! node_ok; then
  candidate=$(apt-cache policy nodejs 2>/dev/null | awk '/Candidate:/ { print $2 }')
  if [ -n "$candidate" ] && [ "$candidate" != "(none)" ] && dpkg --compare-versions "${candidate#*:}" ge "$NODE_MIN"; then
    need+=(nodejs npm)
  else
    echo "setup: Node.js >= $NODE_MIN with npm is required (found: $(node --version 2>/dev/null || echo none);" \
      "Debian offers: ${candidate:-none}). Install it from nodejs.org, NodeSource or nvm, then run this again." >&2
    exit 1
  fi
fi
if [ "${#need[@]}" -gt 0 ]; then
  echo "setup: installing ${need[*]} with apt-get"
  apt_get install --no-install-recommends "${need[@]}" >/dev/null
  # The database packages just installed start their own services; the tests never use them
  # (each run starts private servers on free ports), so stop them to free their memory. Services
  # that were installed before are left alone.
  for pkg in "${need[@]}"; do
    case "$pkg" in
      postgresql) service=postgresql ;;
      mariadb-server) service=mariadb ;;
      *) continue ;;
    esac
    if command -v service >/dev/null 2>&1; then "${SUDO[@]}" service "$service" stop >/dev/null 2>&1 || true; fi
  done
fi
node_ok || { echo "setup: Node.js >= $NODE_MIN is still not available after installing it." >&2; exit 1; }

npm ci --no-audit --no-fund
