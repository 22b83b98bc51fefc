#!/usr/bin/env bash
# HTTP benchmark: requests per second and latency (wrk on loopback, 64 connections, 2 threads,
# 10 s each; the medians of BENCH_REPEAT=5 runs) of
#   1. GET /healthz,
#   2. GET /api/v1/jobs/status with an invalid token (401, before any database work),
#   3. GET /api/v1/jobs/status with a valid JWT on a tenant with 10,000 job rows (and 10,000
#      of another tenant): the web app's call, first page of 10,
# against nginx answering a fixed JSON body (access log on, like jobsd's) on the same machine.
# Also jobsd's memory: RSS idle, after each load, and across BENCH_LEAK_ROUNDS repeated loads
# (a leak shows as growth). Release build, private PostgreSQL, cleaned up on exit.
#
#   bench/http.sh [--no-readme]   prints a table and writes it into bench/README.md
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh wrk nginx-light

duration=${BENCH_DURATION:-10}
conns=${BENCH_CONNECTIONS:-64}
repeat=${BENCH_REPEAT:-5}
leak_rounds=${BENCH_LEAK_ROUNDS:-5}

cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DJOBSD_TESTS=ON >/dev/null
cmake --build build/release -j "$(nproc)" --target jobsd status_floor >/dev/null
# JOBSD_BIN: measure another build (an A/B of a change: build the parent commit elsewhere).
jobsd=${JOBSD_BIN:-build/release/jobsd}

work=$(mktemp -d "${TMPDIR:-/tmp}/jobsd-bench-http.XXXXXX")
chmod 0755 "$work" # the postgres user runs the private cluster inside it
jobsd_pid=""
cleanup() {
    [ -n "$jobsd_pid" ] && kill "$jobsd_pid" 2>/dev/null && wait "$jobsd_pid" 2>/dev/null || true
    [ -f "$work/nginx/nginx.pid" ] && kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true
    scripts/pg.sh stop "$work/pg" || true
    rm -rf "$work"
}
trap cleanup EXIT

scripts/pg.sh start "$work/pg" --durable
# shellcheck disable=SC1091
. "$work/pg/env"
psql -qX -c "CREATE DATABASE bench" >/dev/null
export DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT/bench"
"$jobsd" migrate >/dev/null
tenant=b0b0b0b0-0000-4000-8000-000000000001
other=b0b0b0b0-0000-4000-8000-000000000002
psql -qX -d bench <<SQL >/dev/null
INSERT INTO tenants (id, name) VALUES ('$tenant', 'bench'), ('$other', 'other');
INSERT INTO job_logs (tenant_id, job_type, status, created_at, started_at, completed_at,
                      duration_ms, records_processed, attempts, metadata)
SELECT t, CASE WHEN g % 3 = 0 THEN 'mercadolivre_sync' ELSE 'metrics_aggregation' END,
       CASE WHEN g % 17 = 0 THEN 'error' ELSE 'success' END,
       now() - g * interval '37 seconds', now() - g * interval '37 seconds',
       now() - g * interval '37 seconds' + interval '2 seconds', 2000, 150, 1,
       jsonb_build_object('trigger', 'http', 'request', jsonb_build_object('tenantId', t::text))
FROM generate_series(1, 10000) g, (VALUES ('$tenant'::uuid), ('$other'::uuid)) v(t);
ANALYZE job_logs;
SQL

# Access logging stays on (info), as in production; the log goes to a file.
INTERNAL_JOBS_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export INTERNAL_JOBS_KEY JWT_SECRET
export PORT=0 BIND_ADDRESS=127.0.0.1 LOG_LEVEL=info
# wrk's connections all come from 127.0.0.1: no per-address limit (PER_IP_CONNECTIONS=32).
export PER_IP_CONNECTIONS=0
"$jobsd" serve >"$work/jobsd.log" 2>&1 &
jobsd_pid=$!
port=""
for _ in $(seq 1 100); do
    port=$(grep -o 'port=[0-9]*' "$work/jobsd.log" | head -n 1 | cut -d= -f2 || true)
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { cat "$work/jobsd.log" >&2; exit 1; }
token=$("$jobsd" token --tenant "$tenant" --ttl 3600)
curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/jobs/status" >/dev/null

# nginx: a fixed JSON body, 2 workers (one per core), access log to a file.
mkdir -p "$work/nginx/logs"
nport=$((20000 + RANDOM % 40000))
cat >"$work/nginx/nginx.conf" <<NGX
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log;
events { worker_connections 4096; }
http {
    access_log $work/nginx/logs/access.log;
    server {
        listen 127.0.0.1:$nport;
        location / { default_type application/json; return 200 '{"status":"ok"}'; }
    }
}
NGX
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" 2>/dev/null

rss() { awk '/VmRSS/ {print $2}' "/proc/$jobsd_pid/status"; }

# One wrk run: prints "requests/s p99_ms".
wrk_once() { # url header
    local out
    out=$(wrk -t2 -c"$conns" -d"${duration}s" --latency -H "$2" "$1" 2>&1)
    local rps p99
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {v = $2; if (v ~ /us$/) {sub(/us$/, "", v); v = v / 1000} else if (v ~ /ms$/) {sub(/ms$/, "", v)} else if (v ~ /s$/) {sub(/s$/, "", v); v = v * 1000}; print v}' <<<"$out")
    echo "$rps $p99"
}
# The median requests/s and the median p99 of $repeat runs (each taken on its own: the
# run with the median throughput need not have the median tail).
wrk_median() { # url header label (every run is kept in $work/runs.label)
    local runs
    runs=$(for _ in $(seq 1 "$repeat"); do wrk_once "$1" "$2"; done)
    awk '{ printf "%.0f/%s ", $1, $2 }' <<<"$runs" >"$work/runs.$3"
    echo "$(awk '{print $1}' <<<"$runs" | sort -g | awk -v n="$repeat" 'NR == int((n + 1) / 2)')" \
        "$(awk '{print $2}' <<<"$runs" | sort -g | awk -v n="$repeat" 'NR == int((n + 1) / 2)')"
}

rss_idle=$(rss)
read -r n_health n_health_p99 < <(wrk_median "http://127.0.0.1:$nport/healthz" "X-Bench: 1" nginx)
read -r j_health j_health_p99 < <(wrk_median "http://127.0.0.1:$port/healthz" "X-Bench: 1" healthz)
rss_health=$(rss)
read -r j_401 j_401_p99 < <(wrk_median "http://127.0.0.1:$port/api/v1/jobs/status" "Authorization: Bearer ${token}x" 401)
read -r j_status j_status_p99 < <(wrk_median "http://127.0.0.1:$port/api/v1/jobs/status" "Authorization: Bearer $token" status)
rss_loaded=$(rss)

# The database's floor for the status read: jobsd's own stats_status() in a closed loop with
# nothing in front, on 4 connections (HTTP_THREADS=4: at most 4 reads at once) and on 16 (what
# more connections would give). Medians of 3 runs.
floor_median() { # connections
    for _ in 1 2 3; do build/release/status_floor "$tenant" "$1" "$duration"; done |
        sort -g | awk 'NR == 2'
}
floor4=$(floor_median 4)
floor16=$(floor_median 16)
# Little's law: 64 connections each with one request outstanding; a mean under 5 ms needs
# 64 / 0.005 requests per second.
need=$(awk -v c="$conns" 'BEGIN { printf "%.0f", c / 0.005 }')
best_floor=$(awk -v a="$floor4" -v b="$floor16" 'BEGIN { print (a > b ? a : b) }')

# Repeated loads: the same mix again and again; RSS must not keep growing.
leak_series=""
for _ in $(seq 1 "$leak_rounds"); do
    wrk -t2 -c"$conns" -d3s -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/jobs/status" >/dev/null 2>&1
    wrk -t2 -c"$conns" -d3s -H "Authorization: Bearer ${token}x" "http://127.0.0.1:$port/api/v1/jobs/status" >/dev/null 2>&1
    leak_series+="$(rss) "
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { awk -v ok="$1" 'BEGIN { print (ok ? "met" : "NOT met") }'; }
mkdir -p bench/out
update_readme=yes
[ "${1:-}" = "--no-readme" ] && update_readme=no
{
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/http.sh\`: $(nproc) CPUs ($(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB;"
    echo "wrk -t2 -c$conns -d${duration}s, median requests/s and median p99 of $repeat runs; jobsd release build with default settings (HTTP_THREADS=4, access log on);"
    echo "nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') with $(nproc) workers and its access log on, answering a fixed JSON body."
    echo
    echo "| request | jobsd req/s | jobsd p99 | nginx req/s | nginx p99 | jobsd / nginx | target |"
    echo "|---|---:|---:|---:|---:|---:|---|"
    echo "| GET /healthz | $j_health | ${j_health_p99} ms | $n_health | ${n_health_p99} ms | $(ratio "$j_health" "$n_health") | ≥ 0.6 and p99 < 5 ms: $(verdict "$(awk -v r="$(ratio "$j_health" "$n_health")" -v p="$j_health_p99" 'BEGIN{print (r >= 0.6 && p < 5)}')") |"
    echo "| 401 (invalid JWT) | $j_401 | ${j_401_p99} ms | $n_health | ${n_health_p99} ms | $(ratio "$j_401" "$n_health") | ≥ 0.5 and p99 < 5 ms: $(verdict "$(awk -v r="$(ratio "$j_401" "$n_health")" -v p="$j_401_p99" 'BEGIN{print (r >= 0.5 && p < 5)}')") |"
    echo "| GET /api/v1/jobs/status (valid JWT, 10k rows) | $j_status | ${j_status_p99} ms | | | | p99 < 5 ms: $(verdict "$(awk -v p="$j_status_p99" 'BEGIN{print (p < 5)}')") (database-bound, below) |"
    echo
    echo "The status read's floor (\`build/release/status_floor\`: jobsd's own read, same statement and round trip, no HTTP or JWT in front): $floor4 reads/s on 4 connections, $floor16 on 16; the endpoint reached $(ratio "$j_status" "$floor4") × the 4-connection floor."
    echo "At $conns connections a mean latency under 5 ms needs $need requests/s (Little's law: connections / throughput), $(ratio "$need" "$best_floor") × the best the database alone served here."
    echo
    echo "Every run (requests/s / p99 ms): nginx $(cat "$work/runs.nginx"); jobsd /healthz $(cat "$work/runs.healthz"); 401 $(cat "$work/runs.401"); status $(cat "$work/runs.status")."
    echo "On $(nproc) cores wrk and the server share the CPUs: a p99 of a few milliseconds is mostly time a thread waits for a core (nginx's own p99 above), and it varies from run to run."
    echo
    echo "jobsd RSS: idle $rss_idle kB; after the /healthz load $rss_health kB; after all three loads $rss_loaded kB; across $leak_rounds more rounds of status + 401 loads: $leak_series(kB)."
} | tee bench/out/http.txt
if [ "$update_readme" = yes ]; then
    python3 - bench/out/http.txt <<'PY'
import re, sys
text = open("bench/README.md").read()
block = "<!-- http-results:start -->\n" + open(sys.argv[1]).read() + "<!-- http-results:end -->"
text = re.sub(r"<!-- http-results:start -->.*?<!-- http-results:end -->", lambda m: block, text, flags=re.S)
open("bench/README.md", "w").write(text)
PY
fi
