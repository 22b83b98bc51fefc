#!/usr/bin/env bash
# Where the p99 of bench/http.sh comes from: GET /healthz at 64 connections with the client
# and the server kept off each other's core (server on CPU 0, `wrk -t1` on CPU 1, both with
# taskset), for jobsd with HTTP_THREADS = 4 (the default), 2 and 1, and for nginx with one
# worker on the same core; then the same jobsd settings with both sharing both cores, as
# bench/http.sh measures. Medians of BENCH_REPEAT=3 runs of BENCH_DURATION=8 s. Release
# build, private PostgreSQL (jobsd migrates at start), cleaned up on exit.
#
#   bench/http-tail.sh [--no-readme]   prints a table and writes it into bench/README.md
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh wrk nginx-light
[ "$(nproc)" -ge 2 ] || { echo "http-tail: needs 2 CPUs" >&2; exit 1; }

duration=${BENCH_DURATION:-8}
conns=${BENCH_CONNECTIONS:-64}
repeat=${BENCH_REPEAT:-3}

cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DJOBSD_TESTS=ON >/dev/null
cmake --build build/release -j "$(nproc)" --target jobsd >/dev/null
# JOBSD_BIN: measure another build (an A/B of a change: build the parent commit elsewhere).
jobsd=${JOBSD_BIN:-build/release/jobsd}

work=$(mktemp -d "${TMPDIR:-/tmp}/jobsd-bench-tail.XXXXXX")
chmod 0755 "$work"
server_pid=""
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
    if [ -f "$work/nginx/nginx.pid" ]; then
        kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true
        for _ in $(seq 1 50); do [ -f "$work/nginx/nginx.pid" ] || break; sleep 0.1; done
    fi
}
cleanup() {
    stop_server
    scripts/pg.sh stop "$work/pg" || true
    rm -rf "$work"
}
trap cleanup EXIT

scripts/pg.sh start "$work/pg"
# shellcheck disable=SC1091
. "$work/pg/env"
export DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT/postgres"
INTERNAL_JOBS_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export INTERNAL_JOBS_KEY PORT=0 BIND_ADDRESS=127.0.0.1 LOG_LEVEL=info

start_jobsd() { # threads cpu-list
    HTTP_THREADS=$1 taskset -c "$2" "$jobsd" serve >"$work/jobsd.log" 2>&1 &
    server_pid=$!
    port=""
    for _ in $(seq 1 100); do
        port=$(grep -o 'port=[0-9]*' "$work/jobsd.log" | head -n 1 | cut -d= -f2 || true)
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$work/jobsd.log" >&2; exit 1; }
}
start_nginx() { # cpu
    mkdir -p "$work/nginx/logs"
    port=$((20000 + RANDOM % 40000))
    cat >"$work/nginx/nginx.conf" <<NGX
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log;
events { worker_connections 4096; }
http {
    access_log $work/nginx/logs/access.log;
    server {
        listen 127.0.0.1:$port;
        location / { default_type application/json; return 200 '{"status":"ok"}'; }
    }
}
NGX
    taskset -c "$1" nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" 2>/dev/null
    sleep 0.5
}

# Medians of $repeat wrk runs: "requests/s p99_ms runs".
measure() { # wrk-cpu-list wrk-threads
    local runs
    runs=$(for _ in $(seq 1 "$repeat"); do
        taskset -c "$1" wrk -t"$2" -c"$conns" -d"${duration}s" --latency \
            "http://127.0.0.1:$port/healthz" 2>&1 |
            awk '/Requests\/sec/ {r = $2}
                 $1 == "99%" {v = $2; if (v ~ /us$/) {sub(/us$/, "", v); v = v / 1000}
                              else if (v ~ /ms$/) {sub(/ms$/, "", v)}
                              else if (v ~ /s$/) {sub(/s$/, "", v); v = v * 1000}; p = v}
                 END {print r, p}'
    done)
    echo "$(awk '{print $1}' <<<"$runs" | sort -g | awk -v n="$repeat" 'NR == int((n + 1) / 2)')" \
        "$(awk '{print $2}' <<<"$runs" | sort -g | awk -v n="$repeat" 'NR == int((n + 1) / 2)')" \
        "$(awk '{printf "%.0f/%s ", $1, $2}' <<<"$runs")"
}

rows=()
row() { # label rps p99 runs
    local verdict
    verdict=$(awk -v p="$3" 'BEGIN { print (p < 5 ? "< 5 ms" : "≥ 5 ms") }')
    rows+=("| $1 | $2 | $3 ms | $verdict | $4|")
}

start_nginx 0
read -r rps p99 runs < <(measure 1 1)
row "nginx, 1 worker on CPU 0; wrk -t1 on CPU 1" "$rps" "$p99" "$runs"
stop_server
for t in 4 2 1; do
    start_jobsd "$t" 0
    read -r rps p99 runs < <(measure 1 1)
    row "jobsd HTTP_THREADS=$t on CPU 0; wrk -t1 on CPU 1" "$rps" "$p99" "$runs"
    stop_server
done
for t in 4 2; do
    start_jobsd "$t" 0-1
    read -r rps p99 runs < <(measure 0-1 2)
    row "jobsd HTTP_THREADS=$t and wrk -t2 sharing both CPUs (as bench/http.sh)" "$rps" "$p99" "$runs"
    stop_server
done

mkdir -p bench/out
{
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/http-tail.sh\`: $(nproc) CPUs, load average at start $(cut -d' ' -f1-3 /proc/loadavg);"
    echo "GET /healthz, $conns connections, ${duration} s per run, medians of $repeat runs, access log on."
    echo
    echo "| configuration | req/s | p99 | p99 target | every run (req/s / p99 ms) |"
    echo "|---|---:|---:|---|---|"
    printf '%s\n' "${rows[@]}"
} | tee bench/out/http-tail.txt
if [ "${1:-}" != "--no-readme" ]; then
    python3 - bench/out/http-tail.txt <<'PY'
import re, sys
text = open("bench/README.md").read()
block = "<!-- tail-results:start -->\n" + open(sys.argv[1]).read() + "<!-- tail-results:end -->"
text = re.sub(r"<!-- tail-results:start -->.*?<!-- tail-results:end -->", lambda m: block, text, flags=re.S)
open("bench/README.md", "w").write(text)
PY
fi
