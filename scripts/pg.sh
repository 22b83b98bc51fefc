#!/usr/bin/env bash
# A private PostgreSQL cluster for tests, the demo and benchmarks: its own directory, a free
# port on 127.0.0.1, trust authentication on loopback, run by an unprivileged user (initdb
# refuses root: as root we use the `postgres` system user).
#
#   scripts/pg.sh start DIR [--durable]   initdb (when new) + start; writes DIR/env. A cluster
#                                         that ran before comes back on its port (DIR/env)
#   scripts/pg.sh stop DIR [fast|immediate]   stop if running (pg_ctl -m, default fast)
#   scripts/pg.sh restart DIR [fast|immediate]  stop with that mode, start on the same port
#   scripts/pg.sh env DIR                 print the exports of DIR/env
#   scripts/pg.sh pgbouncer DIR PGPORT    a PgBouncer (transaction pooling, trust auth) on a
#                                         free port of 127.0.0.1 in front of the cluster on
#                                         127.0.0.1:PGPORT, every database (`*`); writes
#                                         DIR/env (PGBOUNCER_PORT)
#   scripts/pg.sh pgbouncer-stop DIR      stop that PgBouncer
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
usage="usage: pg.sh start|stop|restart|env|pgbouncer|pgbouncer-stop DIR [...]"
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "$usage" >&2; exit 2; }
bin=$(pg_bindir)

stop_mode() {
    case "${1:-fast}" in
    fast | immediate) echo "${1:-fast}" ;;
    *) echo "pg.sh: stop mode must be fast or immediate" >&2; exit 2 ;;
    esac
}

stop_cluster() {
    local mode=$1
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m "$mode" -w -t 60 stop >/dev/null 2>&1 ||
            as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
}

# The owner of the files this script leaves in DIR (PostgreSQL and PgBouncer refuse root).
prepare_dir() {
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
}

case "$cmd" in
start)
    durable=no
    [ "${3:-}" = "--durable" ] && durable=yes
    prepare_dir
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
    # A cluster that ran before comes back on the same port (clients keep their URLs).
    previous=""
    [ -f "$dir/env" ] && previous=$(sed -n 's/^export PGPORT=//p' "$dir/env")
    for attempt in $(seq 1 30); do
        [ -n "$port" ] && break
        if [ -n "$previous" ] && [ "$attempt" -le 3 ]; then
            candidate=$previous
        else
            candidate=$((20000 + RANDOM % 40000))
        fi
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
    stop_cluster "$(stop_mode "${3:-}")"
    ;;
restart)
    mode=$(stop_mode "${3:-}")
    [ -f "$dir/env" ] || { echo "pg.sh: no cluster in $dir" >&2; exit 1; }
    old=$(sed -n 's/^export PGPORT=//p' "$dir/env")
    stop_cluster "$mode"
    "$0" start "$dir"
    new=$(sed -n 's/^export PGPORT=//p' "$dir/env")
    [ "$new" = "$old" ] || { echo "pg.sh: restarted on port $new instead of $old" >&2; exit 1; }
    ;;
pgbouncer)
    pgport=${3:-}
    [ -n "$pgport" ] || { echo "usage: pg.sh pgbouncer DIR PGPORT" >&2; exit 2; }
    command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] ||
        { echo "pg.sh: pgbouncer not found (apt-get install pgbouncer)" >&2; exit 1; }
    pgbouncer=$(command -v pgbouncer 2>/dev/null || echo /usr/sbin/pgbouncer)
    prepare_dir
    echo '"postgres" ""' | as_owner tee "$dir/userlist.txt" >/dev/null
    port=""
    for _ in $(seq 1 30); do
        candidate=$((20000 + RANDOM % 40000))
        as_owner tee "$dir/pgbouncer.ini" >/dev/null <<INI
[databases]
* = host=127.0.0.1 port=$pgport

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $candidate
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
admin_users = postgres
pool_mode = transaction
max_client_conn = 2000
default_pool_size = 40
server_login_retry = 1
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
        rm -f "$dir/pgbouncer.pid"
        as_owner "$pgbouncer" -d -q "$dir/pgbouncer.ini" 2>>"$dir/start.log" || continue
        for _ in $(seq 1 100); do
            if "$bin/psql" -X -q -h 127.0.0.1 -p "$candidate" -U postgres -d postgres -tAc 'SELECT 1' >/dev/null 2>&1; then
                port=$candidate
                break
            fi
            sleep 0.1
        done
        [ -n "$port" ] && break
        [ -f "$dir/pgbouncer.pid" ] && kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
    done
    [ -n "$port" ] || { echo "pg.sh: could not start PgBouncer (see $dir/pgbouncer.log)" >&2; tail -n 20 "$dir/pgbouncer.log" >&2 || true; exit 1; }
    echo "export PGBOUNCER_PORT=$port" >"$dir/env"
    echo "PgBouncer $("$pgbouncer" --version | head -n 1 | awk '{print $2}') (transaction pooling) on 127.0.0.1:$port in front of 127.0.0.1:$pgport" >&2
    ;;
pgbouncer-stop)
    if [ -f "$dir/pgbouncer.pid" ]; then
        pid=$(cat "$dir/pgbouncer.pid")
        if kill -TERM "$pid" 2>/dev/null; then
            for _ in $(seq 1 100); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$dir/pgbouncer.pid"
    fi
    ;;
env)
    cat "$dir/env"
    ;;
*)
    echo "$usage" >&2
    exit 2
    ;;
esac
