#!/usr/bin/env bash
# Slow-connection benchmark (issue 19 item 7; bench/README.md, "Slow connections"): with
# jobsd's defaults,
#   1. trickle: 1,000 connections from 100 loopback addresses (127.0.0.2-127.0.0.101), each
#      sending a header byte every 2 s and never finishing (reopened when closed);
#   2. idle: 560 keep-alive connections from the same addresses, idle after one request;
# and meanwhile a client on 127.0.0.1 times GET /healthz every 0.5 s (bench/slow_clients.py):
# p50, max, failures, and jobsd's RSS. Fails (exit 1) when a probe was not answered 200
# within 1 s. Release build, private PostgreSQL, cleaned up on exit.
#
#   bench/slow.sh            JOBSD_BIN=path: measure another build (an A/B against main)
#   BENCH_SLOW_DURATION=20   seconds of probing per scenario
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh

duration=${BENCH_SLOW_DURATION:-20}
# 1,000 client sockets here and as many in jobsd: raise the open-file limit of both.
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge 4096 ] || {
    echo "bench/slow.sh: ulimit -n is $(ulimit -n): 4096 needed" >&2
    exit 2
}

if [ -z "${JOBSD_BIN:-}" ]; then
    cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build build/release -j "$(nproc)" --target jobsd >/dev/null
fi
jobsd=${JOBSD_BIN:-build/release/jobsd}

work=$(mktemp -d "${TMPDIR:-/tmp}/jobsd-bench-slow.XXXXXX")
chmod 0755 "$work" # the postgres user runs the private cluster inside it
jobsd_pid=""
stop_jobsd() {
    if [ -n "$jobsd_pid" ]; then
        kill "$jobsd_pid" 2>/dev/null || true
        wait "$jobsd_pid" 2>/dev/null || true
        jobsd_pid=""
    fi
}
cleanup() {
    stop_jobsd
    scripts/pg.sh stop "$work/pg" || true
    rm -rf "$work"
}
trap cleanup EXIT

scripts/pg.sh start "$work/pg"
# shellcheck disable=SC1091
. "$work/pg/env"
psql -qX -c "CREATE DATABASE bench" >/dev/null
export DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT/bench"
"$jobsd" migrate >/dev/null
INTERNAL_JOBS_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export INTERNAL_JOBS_KEY
export PORT=0 BIND_ADDRESS=127.0.0.1 LOG_LEVEL=info

start_jobsd() {
    "$jobsd" serve >"$work/jobsd.log" 2>&1 &
    jobsd_pid=$!
    port=""
    for _ in $(seq 1 100); do
        port=$(grep -o 'port=[0-9]*' "$work/jobsd.log" | head -n 1 | cut -d= -f2 || true)
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$work/jobsd.log" >&2; exit 1; }
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null
}

status=0
results=()
for mode in trickle idle; do
    start_jobsd
    if [ "$mode" = trickle ]; then
        args=(--conns 1000 --interval 2 --warmup 12)
    else
        args=(--conns 560 --warmup 5)
    fi
    rss0=$(awk '/^VmRSS:/ { print $2 }' "/proc/$jobsd_pid/status")
    line=$(python3 bench/slow_clients.py --port "$port" --pid "$jobsd_pid" --mode "$mode" \
        --addrs 100 --duration "$duration" "${args[@]}") || status=1
    results+=("$(echo "$line" | sed "s/}\$/, \"rss_idle_kib\": $rss0}/")")
    stop_jobsd
done

echo "jobsd: $jobsd ($("$jobsd" version 2>/dev/null | head -n 1))"
printf '%s\n' "${results[@]}" | python3 -c '
import json, sys
print("| scenario | probes | failed | p50 ms | max ms | jobsd RSS idle / max / end (MiB) | closed by jobsd |")
print("|---|---|---|---|---|---|---|")
for line in sys.stdin:
    r = json.loads(line)
    what = "%d trickling" % r["connections"] if r["mode"] == "trickle" else "%d idle keep-alive" % r["connections"]
    mib = lambda k: "%.1f" % (r[k] / 1024.0)
    print("| %s, %d addresses | %d | %d | %s | %s | %s / %s / %s | %d |" % (what, r["addresses"], r["probes"],
          r["failures"], r["p50_ms"], r["max_ms"], mib("rss_idle_kib"), mib("rss_max_kib"), mib("rss_end_kib"),
          r["closed_by_server"]))
'
[ "$status" = 0 ] && echo "slow.sh: every probe answered within 1 s" || echo "slow.sh: FAILED: a probe waited over 1 s or failed"
exit "$status"
