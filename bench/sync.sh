#!/usr/bin/env bash
# The Mercado Livre sync benchmark: jobsd syncing a seller with 5,000 listings, 20,000 orders
# and 30 days of visits from the fake API (tests/fake_ml, scenario bench.json) with 20 ms of
# injected latency on every request, at ML_MAX_RPS=500 and ML_CONCURRENCY=8; then the same
# sync with ML_CONCURRENCY=1 (the same requests one after another) for comparison.
#
#   bench/sync.sh [--no-readme]     prints a table; writes it into bench/README.md
#   JOBSD_BIN=<another build> bench/sync.sh --no-readme   the same against another jobsd (an A/B)
#
# Reports: total time, requests made, requests per second; the sequential time; the bound
# set by the limits (a sync cannot take less than max(requests / ML_MAX_RPS,
# requests x latency / ML_CONCURRENCY)); and the fake's counters (highest in flight, highest
# requests in any one-second window). Then the same account synced again, unchanged: the
# requests it costs per endpoint against the first sync's, and the rows it wrote (none should
# be: listings, orders, order_items and listing_visits_daily rows whose xmin is the second
# sync's).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$root"
update_readme=yes
[ "${1:-}" = "--no-readme" ] && update_readme=no

latency=${BENCH_LATENCY_MS:-20}
rps=${BENCH_MAX_RPS:-500}
conc=${BENCH_CONCURRENCY:-8}
tenant=b5b5b5b5-0000-4000-8000-000000000001
seller=3300000001
access=APP_USR-7700112233445566-010124-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-3300000001
refresh=TG-bench0000000000000000000001-3300000001

scripts/bootstrap.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DJOBSD_TESTS=ON >/dev/null
cmake --build build/release -j "$(nproc)" --target jobsd fake_ml >/dev/null
jobsd=${JOBSD_BIN:-build/release/jobsd}

work=$(mktemp -d "${TMPDIR:-/tmp}/jobsd-bench-sync.XXXXXX")
chmod 0755 "$work"
fake_pid=""
jobsd_pid=""
cleanup() {
    for p in $jobsd_pid $fake_pid; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
    scripts/pg.sh stop "$work/pg" || true
    rm -rf "$work"
}
trap cleanup EXIT

scripts/pg.sh start "$work/pg" --durable
# shellcheck disable=SC1091
. "$work/pg/env"

start_fake() {
    build/release/tests/fake_ml/fake_ml --scenario tests/fake_ml/scenarios/bench.json \
        --latency-ms "$latency" >"$work/fake.out" 2>&1 &
    fake_pid=$!
    for _ in $(seq 1 200); do
        fake_port=$(grep -o 'port=[0-9]*' "$work/fake.out" | cut -d= -f2 || true)
        [ -n "$fake_port" ] && return
        sleep 0.05
    done
    cat "$work/fake.out" >&2
    exit 1
}

# jobsd serve on $DATABASE_URL with ML_CONCURRENCY=$1; its port in $port.
start_jobsd() {
    local c=$1
    INTERNAL_JOBS_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    export INTERNAL_JOBS_KEY
    PORT=0 BIND_ADDRESS=127.0.0.1 SYNC_WAIT_SECONDS=900 ML_API_BASE_URL="http://127.0.0.1:$fake_port" \
        ML_MAX_RPS=$rps ML_CONCURRENCY=$c ML_CLIENT_ID=7700112233445566 \
        ML_CLIENT_SECRET=bench-client-secret LOG_LEVEL=warn "$jobsd" serve \
        >>"$work/jobsd-$c.log" 2>&1 &
    jobsd_pid=$!
    port=""
    for _ in $(seq 1 200); do
        port=$(ss -ltnp 2>/dev/null | awk -v pid="$jobsd_pid" '$0 ~ "pid="pid"," {split($4, a, ":"); print a[length(a)]; exit}')
        [ -n "$port" ] && break
        sleep 0.05
    done
    [ -n "$port" ] || { cat "$work/jobsd-$c.log" >&2; exit 1; }
}

# One measured sync on a fresh database: writes "seconds requests max_in_flight max_per_second
# records" to $work/line-<concurrency>. Runs in this shell (not a subshell), so the cleanup
# trap knows every process it started.
run_sync() { # concurrency
    local c=$1 db=sync_c$1 port
    if [ -n "$fake_pid" ]; then
        kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null || true
    fi
    start_fake
    psql -qX -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
    export DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT/$db"
    "$jobsd" migrate >/dev/null
    psql -qX -d "$db" >/dev/null <<SQL
INSERT INTO tenants (id, name) VALUES ('$tenant', 'bench');
INSERT INTO marketplace_connections (tenant_id, provider, seller_id, access_token, refresh_token,
                                     expires_at, status)
VALUES ('$tenant', 'mercadolivre', $seller, '$access', '$refresh', now() + interval '5 hours',
        'active');
SQL
    start_jobsd "$c"
    curl -s -X POST "http://127.0.0.1:$fake_port/__fake/reset-stats" >/dev/null
    local t0 t1
    t0=$(date +%s.%N)
    curl -sS --max-time 900 -X POST "http://127.0.0.1:$port/api/v1/jobs/sync-mercadolivre" \
        -H "X-Internal-Key: $INTERNAL_JOBS_KEY" -H "Content-Type: application/json" \
        -d "{\"tenantId\": \"$tenant\", \"daysBack\": 30}" -o "$work/result-$c.json"
    t1=$(date +%s.%N)
    curl -s "http://127.0.0.1:$fake_port/__fake/stats?log=0" -o "$work/stats-$c.json"
    kill "$jobsd_pid" && wait "$jobsd_pid" 2>/dev/null || true
    jobsd_pid=""
    python3 - "$work/result-$c.json" "$work/stats-$c.json" "$t0" "$t1" >"$work/line-$c" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); s = json.load(open(sys.argv[2]))
if r.get("success") is not True:
    sys.exit("sync did not succeed: " + json.dumps(r)[:500])
print("%.2f %d %d %d %d" % (float(sys.argv[4]) - float(sys.argv[3]), s["requests_total"],
      s["max_in_flight"], s["max_per_second"], r["recordsProcessed"]))
PY
}

echo "== sync with ML_CONCURRENCY=$conc, ML_MAX_RPS=$rps, ${latency} ms per request" >&2
run_sync "$conc"
read -r t_par n_par inflight_par persec_par recs_par <"$work/line-$conc"
echo "== the same account synced again, unchanged (same database, same fake)" >&2
# The second sync on the database and fake of the first: its requests per endpoint and the
# rows it wrote.
resync_unchanged() { # concurrency
    local c=$1 db=sync_c$1 port txid
    export DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT/$db"
    start_jobsd "$c"
    curl -s -X POST "http://127.0.0.1:$fake_port/__fake/reset-stats" >/dev/null
    txid=$(psql -qXtA -d "$db" -c "SELECT txid_current() % 4294967296")
    curl -sS --max-time 900 -X POST "http://127.0.0.1:$port/api/v1/jobs/sync-mercadolivre" \
        -H "X-Internal-Key: $INTERNAL_JOBS_KEY" -H "Content-Type: application/json" \
        -d "{\"tenantId\": \"$tenant\", \"daysBack\": 30}" -o "$work/result-again.json"
    curl -s "http://127.0.0.1:$fake_port/__fake/stats?log=0" -o "$work/stats-again.json"
    kill "$jobsd_pid" && wait "$jobsd_pid" 2>/dev/null || true
    jobsd_pid=""
    psql -qXtA -d "$db" -c "SELECT (SELECT count(*) FROM listings WHERE xmin::text::bigint >= $txid) || ' ' ||
        (SELECT count(*) FROM orders WHERE xmin::text::bigint >= $txid) || ' ' ||
        (SELECT count(*) FROM order_items WHERE xmin::text::bigint >= $txid) || ' ' ||
        (SELECT count(*) FROM listing_visits_daily WHERE xmin::text::bigint >= $txid)" >"$work/written-again"
}
resync_unchanged "$conc"
read -r w_listings w_orders w_items w_visits <"$work/written-again"
unchanged=$(python3 - "$work/stats-$conc.json" "$work/stats-again.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))["requests"]; b = json.load(open(sys.argv[2]))["requests"]
keys = [k for k in ["items_search", "items_multiget", "orders_search", "orders_get", "visits", "oauth_token"] if a.get(k, 0) or b.get(k, 0)]
print("| sync | " + " | ".join(keys) + " | total |")
print("|---|" + "---:|" * (len(keys) + 1))
print("| first (empty database) | " + " | ".join(str(a.get(k, 0)) for k in keys) + " | %d |" % sum(a.get(k, 0) for k in keys))
print("| again, unchanged account | " + " | ".join(str(b.get(k, 0)) for k in keys) + " | %d |" % sum(b.get(k, 0) for k in keys))
PY
)
echo "== the same sync with ML_CONCURRENCY=1 (one request after another)" >&2
run_sync 1
read -r t_seq n_seq inflight_seq persec_seq recs_seq <"$work/line-1"

bound=$(python3 -c "n=$n_par; print('%.2f' % max(n / $rps, n * $latency / 1000 / $conc))")
report=$(python3 - <<PY
t_par, t_seq, n, bound = $t_par, $t_seq, $n_par, $bound
print("| run | time | requests | requests/s | highest in flight | highest per second | records |")
print("|---|---:|---:|---:|---:|---:|---:|")
print("| ML_CONCURRENCY=$conc, ML_MAX_RPS=$rps | %.1f s | %d | %.0f | $inflight_par | $persec_par | $recs_par |" % (t_par, n, n / t_par))
print("| ML_CONCURRENCY=1 (sequential) | %.1f s | %d | %.0f | $inflight_seq | $persec_seq | $recs_seq |" % (t_seq, $n_seq, $n_seq / t_seq))
print()
print("- speed-up over the sequential run: **%.1fx** (target: at least 6x)" % (t_seq / t_par))
print("- the bound set by the limits: max(%d / $rps, %d x $latency ms / $conc) = %.1f s; the sync reached **%.0f%%** of it (issue 7 target: at least 80%%)" % (n, n, bound, 100 * bound / t_par))
PY
)
report="$report

The same account synced again right after, nothing changed on Mercado Livre's side (requests per endpoint):

$unchanged

- rows the second sync wrote: listings $w_listings, orders $w_orders, order_items $w_items, listing_visits_daily $w_visits (issue 18 target: none)"
header="Measured $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/sync.sh\` on $(nproc) CPUs ($(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | xargs)); fake API (tests/fake_ml, bench.json: 5,000 listings, 20,000 orders, 30 days of visits) with ${latency} ms injected per request; release build."
printf '%s\n\n%s\n' "$header" "$report"
if [ "$update_readme" = yes ]; then
    python3 - "$header" "$report" <<'PY'
import re, sys
path = "bench/README.md"
text = open(path).read()
block = "<!-- sync-results:start -->\n" + sys.argv[1] + "\n\n" + sys.argv[2] + "\n<!-- sync-results:end -->"
if "<!-- sync-results:start -->" in text:
    text = re.sub(r"<!-- sync-results:start -->.*?<!-- sync-results:end -->", lambda m: block, text, flags=re.S)
else:
    text += "\n## The Mercado Livre sync\n\n```sh\nbench/sync.sh               # about 3 minutes\n```\n\n" + block + "\n"
open(path, "w").write(text)
PY
fi
