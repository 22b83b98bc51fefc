#!/usr/bin/env bash
# Every benchmark, one after another, each writing its figures into bench/README.md:
#   bench/rebuild.sh               10,000 listings x 31 days, jobsd vs psql (about 3 min)
#   bench/rebuild.sh --days=366    10,000 listings x 366 days, fewer runs (about 10 min)
#   bench/http.sh                  wrk: jobsd vs nginx, the status floor, latency, memory (about 6 min)
#   bench/http-tail.sh             the p99 with client and server on separate cores (about 3 min)
#   bench/sync.sh                  the Mercado Livre sync vs one request at a time (about 3 min)
#   bench/fleet.sh                 1,000 tenants, allTenants on two instances vs psql (about 3 min;
#                                  prints its table: bench/README.md "The fleet" by hand)
# Run it on a quiet machine: every script prints the load average it started with.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
echo "== rebuild, 31 days" >&2
bench/rebuild.sh
echo "== rebuild, 366 days" >&2
BENCH_FIRST_RUNS=${BENCH_FIRST_RUNS_366:-1} BENCH_RERUNS=${BENCH_RERUNS_366:-3} \
    BENCH_REWRITES=${BENCH_REWRITES_366:-1} bench/rebuild.sh --days=366
echo "== HTTP" >&2
bench/http.sh
echo "== HTTP tail latency" >&2
bench/http-tail.sh
echo "== Mercado Livre sync" >&2
bench/sync.sh
echo "== fleet" >&2
bench/fleet.sh
echo "== all benchmarks done in $(( $(date +%s) - start )) s; figures in bench/README.md" >&2
