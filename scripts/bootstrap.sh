#!/usr/bin/env bash
# Installs what jobsd needs to build, test and run its demo on Debian 12, when missing.
# Idempotent and quiet when everything is there. Needs root (or sudo) only to install.
set -euo pipefail

packages=(
    build-essential cmake pkg-config git ca-certificates curl
    libmicrohttpd-dev libjansson-dev libpq-dev libssl-dev libcurl4-openssl-dev libcmocka-dev
    postgresql postgresql-contrib
    clang clang-format libclang-rt-dev valgrind
    pgbouncer
    systemd
    tzdata locales
)
# Headless Chromium runs the operator console's browser test (tests/browser).
packages+=(chromium)
# Node.js runs the JWT interop test (tokens minted by the npm package jsonwebtoken).
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
[ $# -gt 0 ] && packages+=("$@")

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "bootstrap: missing packages (${missing[*]}) and not root" >&2; exit 1; }
    sudo=sudo
fi
echo "bootstrap: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no package lists yet.
if ! $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/jobsd-apt.log 2>&1; then
    $sudo apt-get update -q >>/tmp/jobsd-apt.log 2>&1
    $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/jobsd-apt.log 2>&1 ||
        { tail -n 30 /tmp/jobsd-apt.log >&2; exit 1; }
fi
# The Debian packages may start a system cluster on 5432 and a PgBouncer on 6432; jobsd's
# scripts use private clusters and their own PgBouncer (scripts/pg.sh) and never touch them.
