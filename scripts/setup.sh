#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine: the real database servers the
# tests start as throwaway instances (PostgreSQL, MariaDB), openssl for test certificates, and
# the pinned npm dependencies. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
{ command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; } || need+=(mariadb-server)
command -v mariadb-install-db >/dev/null 2>&1 || need+=(mariadb-server)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "setup: installing ${need[*]} with apt-get"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The Debian packages start their own services; the tests never use them.
if command -v service >/dev/null 2>&1; then
  service mariadb stop >/dev/null 2>&1 || true
  service postgresql stop >/dev/null 2>&1 || true
fi

npm ci --no-audit --no-fund
