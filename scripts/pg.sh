#!/usr/bin/env bash
# A private PostgreSQL cluster for tests, the demo and benchmarks: its own directory, a free
# port on 127.0.0.1, trust authentication on loopback, run by an unprivileged user (initdb
# refuses root: as root we use the `postgres` system user).
#
#   scripts/pg.sh start DIR [--durable]   initdb (when new) + start; writes DIR/env
#   scripts/pg.sh stop DIR                stop (fast) if running
#   scripts/pg.sh env DIR                 print the exports of DIR/env
#
# DIR/env defines PGHOST, PGPORT, PGUSER, PGDATABASE and JOBSD_PG_URL (a libpq URL of the
# `postgres` database). Tests run with fsync off unless --durable (benchmarks).
set -euo pipefail

pg_bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$d" ] || { echo "pg.sh: PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
    echo "$d"
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: pg.sh start|stop|env DIR [--durable]" >&2; exit 2; }
bin=$(pg_bindir)

case "$cmd" in
start)
    durable=no
    [ "${3:-}" = "--durable" ] && durable=yes
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
        chown postgres "$dir"
        chmod 0755 "$dir"
        runuser -u postgres -- test -x "$dir" || {
            echo "pg.sh: the postgres user cannot reach $dir (a parent directory is private);" \
                "use a directory under /tmp or /var/tmp" >&2
            exit 1
        }
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
            --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
        {
            echo "listen_addresses = '127.0.0.1'"
            echo "unix_socket_directories = '$dir'"
            echo "max_connections = 300"
            echo "shared_buffers = 256MB"
            echo "log_min_messages = warning"
            echo "log_line_prefix = '%m [%p] '"
            if [ "$durable" = no ]; then
                echo "fsync = off"
                echo "synchronous_commit = off"
                echo "full_page_writes = off"
            fi
        } | as_owner tee -a "$dir/data/postgresql.conf" >/dev/null
    fi
    port=""
    # Already running (a second start): reuse it.
    if as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        port=$(sed -n 4p "$dir/data/postmaster.pid")
    fi
    for _ in $(seq 1 30); do
        [ -n "$port" ] && break
        candidate=$((20000 + RANDOM % 40000))
        if as_owner "$bin/pg_ctl" -D "$dir/data" -o "-p $candidate" -l "$dir/postgres.log" -w -t 60 start >/dev/null 2>&1; then
            port=$candidate
            break
        fi
    done
    [ -n "$port" ] || { echo "pg.sh: could not start PostgreSQL (see $dir/postgres.log)" >&2; tail -n 20 "$dir/postgres.log" >&2 || true; exit 1; }
    cat >"$dir/env" <<ENV
export PGHOST=127.0.0.1
export PGPORT=$port
export PGUSER=postgres
export PGDATABASE=postgres
export JOBSD_PG_URL=postgresql://postgres@127.0.0.1:$port/postgres
ENV
    echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') running on 127.0.0.1:$port (data in $dir/data)" >&2
    ;;
stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
            as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    ;;
env)
    cat "$dir/env"
    ;;
*)
    echo "usage: pg.sh start|stop|env DIR [--durable]" >&2
    exit 2
    ;;
esac
