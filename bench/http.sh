#!/usr/bin/env bash
# HTTP benchmark: requests per second and latency of
#   1. GET /api/v1/jobs/status with a valid JWT, on a tenant with 10,000 job rows
#      (and 10,000 more of another tenant), first page of 10 (the web app's call);
#   2. the same request with an invalid token (rejected with 401 before any database work);
#   3. GET /healthz.
# with wrk on loopback (64 connections, 2 threads, 10 s each). Release build, private
# PostgreSQL, cleaned up on exit.
#
#   bench/http.sh [--no-readme]   prints a table and writes it into bench/README.md
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scripts/bootstrap.sh wrk

duration=${BENCH_DURATION:-10}
conns=${BENCH_CONNECTIONS:-64}

cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DJOBSD_TESTS=ON >/dev/null
cmake --build build/release -j "$(nproc)" --target jobsd >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/jobsd-bench-http.XXXXXX")
chmod 0755 "$work" # the postgres user runs the private cluster inside it
jobsd_pid=""
cleanup() {
    [ -n "$jobsd_pid" ] && kill "$jobsd_pid" 2>/dev/null && wait "$jobsd_pid" 2>/dev/null || true
    scripts/pg.sh stop "$work/pg" || true
    rm -rf "$work"
}
trap cleanup EXIT

scripts/pg.sh start "$work/pg" --durable
# shellcheck disable=SC1091
. "$work/pg/env"
psql -qX -c "CREATE DATABASE bench" >/dev/null
export DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT/bench"
build/release/jobsd migrate >/dev/null
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

export INTERNAL_JOBS_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export JWT_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
# Access logging stays on (info), as in production; the log goes to a file.
export PORT=0 BIND_ADDRESS=127.0.0.1 LOG_LEVEL=info
build/release/jobsd serve >"$work/jobsd.log" 2>&1 &
jobsd_pid=$!
port=""
for _ in $(seq 1 100); do
    port=$(grep -o 'port=[0-9]*' "$work/jobsd.log" | head -n 1 | cut -d= -f2 || true)
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { cat "$work/jobsd.log" >&2; exit 1; }

token=$(build/release/jobsd token --tenant "$tenant" --ttl 3600)
curl -fsS -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/jobs/status" >/dev/null

run() { # name, path, header
    local name=$1 path=$2 header=$3 out
    out="$work/wrk-$(printf '%s' "$name" | tr -c 'A-Za-z0-9' '_').txt"
    wrk -t2 -c"$conns" -d"${duration}s" --latency -H "$header" "http://127.0.0.1:$port$path" \
        >"$out" 2>&1
    local rps p50 p99 non2xx
    rps=$(awk '/Requests\/sec/ {print $2}' "$out")
    p50=$(awk '$1 == "50%" {print $2}' "$out")
    p99=$(awk '$1 == "99%" {print $2}' "$out")
    non2xx=$(awk '/Non-2xx/ {print $5}' "$out")
    printf '| %-44s | %10s | %8s | %8s | %s |\n' "$name" "$rps" "$p50" "$p99" "${non2xx:-0}"
}

mkdir -p bench/out
update_readme=yes
[ "${1:-}" = "--no-readme" ] && update_readme=no
{
    echo "machine: $(nproc) cores, $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB; $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "wrk -t2 -c$conns -d${duration}s, jobsd HTTP_THREADS=4 (default), release build"
    echo "| request | requests/s | p50 | p99 | non-2xx |"
    echo "|---|---:|---:|---:|---:|"
    run "GET /api/v1/jobs/status (valid JWT, 10k rows)" "/api/v1/jobs/status" "Authorization: Bearer $token"
    run "GET /api/v1/jobs/status (invalid JWT, 401)" "/api/v1/jobs/status" "Authorization: Bearer ${token}x"
    run "GET /healthz" "/healthz" "X-Bench: 1"
    echo "jobsd RSS after the runs: $(awk '/VmRSS/ {print $2, $3}' /proc/$jobsd_pid/status)"
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
