#!/usr/bin/env bash
# The fleet benchmark (issue 20 item 1): one `allTenants` rebuild against the same per-tenant
# statements run back to back by psql.
#
#   bench/fleet.sh
#
# 1. a release build (build/release) and a private DURABLE PostgreSQL cluster in a temporary
#    directory, stopped and removed on exit (autovacuum off; shared_buffers 1GB when RAM >= 4 GiB);
# 2. a dataset in database `data`: BENCH_TENANTS (1,000) active tenants × 100 listings, each
#    with a visits row for the last 3 days and 20 counted orders (one item) a day over the last
#    3 days in JOBS_TIMEZONE (America/Sao_Paulo); migrated by `jobsd migrate`, VACUUM ANALYZE;
# 3. two copies (CREATE DATABASE … TEMPLATE data): `fleet_jobsd` (A) and `fleet_psql` (B);
# 4. BENCH_RUNS (3) runs, A and B alternating who goes first, listing_metrics_daily emptied
#    (DELETE, VACUUM) and a CHECKPOINT before each:
#    A  two `jobsd serve` instances (JOB_WORKERS=2 each, FLEET_MAX_RUNNING default 4) on A;
#       one POST {"allTenants": true, "daysBack": 2} through the first (Prefer:
#       respond-async); wall time = the parent's completed_at - created_at (database clock);
#       the parent must count every tenant as succeeded;
#    B  the floor: one psql session running, for every tenant one after the other, what a
#       child does: the job_logs INSERT of its enqueue, then BEGIN, the transaction settings
#       (sql/queries/rebuild_prologue.sql), the tenant's advisory lock, the rebuild statement
#       (sql/queries/rebuild_daily_metrics.sql, prepared once), MAX(date), the job_logs UPDATE
#       to success, COMMIT (timed: the psql run's wall time);
#    A and B must end with identical listing_metrics_daily contents (md5 of the ordered rows
#    without id, job_log_id, created_at, updated_at);
# 5. the whole of 4. twice: FLEET_MAX_RUNNING=4 (the default: every worker of the two
#    instances busy) and 1 (children one at a time, as the floor runs them: the difference is
#    jobsd's own cost per tenant); prints one table row for each: the medians of jobsd's wall
#    and the floor, the median of the runs' ratios, per tenant jobsd / floor / overhead
#    ((jobsd − floor) / tenants, in ms), a child's mean duration, every run's pair.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$root"
case "${1:-}" in
-h | --help)
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 0
    ;;
"") ;;
*)
    echo "usage: bench/fleet.sh" >&2
    exit 2
    ;;
esac

tenants=${BENCH_TENANTS:-1000}
runs=${BENCH_RUNS:-3}
[[ $tenants =~ ^[1-9][0-9]*$ && $runs =~ ^[1-9][0-9]*$ ]] || {
    echo "fleet.sh: BENCH_TENANTS and BENCH_RUNS must be positive integers" >&2
    exit 2
}
tz=America/Sao_Paulo
db_a=fleet_jobsd
db_b=fleet_psql
jobsd=$root/build/release/jobsd
step="starting"
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() {
    echo "fleet.sh: $*" >&2
    exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/jobsd-fleet.XXXXXX")
chmod 0755 "$work"
pids=()
ports=()
stop_all() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ "$rc" != 0 ]; then
        echo "fleet.sh: FAILED while $step (exit $rc)" >&2
        tail -n 15 "$work"/jobsd-*.log 2>/dev/null >&2 || true
    fi
    stop_all
    scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || true
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "load average at start: $(cut -d ' ' -f 1-3 /proc/loadavg)"
step="building the release binary (build/release)"
log "$step"
scripts/bootstrap.sh >/dev/null
if ! { cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DJOBSD_TESTS=ON &&
    cmake --build build/release -j"$(nproc)" --target jobsd; } >"$work/build.log" 2>&1; then
    tail -n 40 "$work/build.log" >&2
    die "the build failed"
fi
key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

step="starting the private PostgreSQL (durable)"
log "$step"
scripts/pg.sh start "$work/pg" --durable
# shellcheck disable=SC1091
. "$work/pg/env"
export PGOPTIONS="-c client_min_messages=warning"
psql_q() { psql -X -v ON_ERROR_STOP=1 -q "$@"; }
psql_v() { psql -X -v ON_ERROR_STOP=1 -q -At "$@"; }
url_of() { echo "postgresql://postgres@127.0.0.1:$PGPORT/$1"; }
shared_buffers=256MB
[ "$(awk '/^MemTotal/ { print int($2 / 1048576) }' /proc/meminfo)" -ge 4 ] && shared_buffers=1GB
psql_q -d postgres -c "ALTER SYSTEM SET autovacuum = off" \
    -c "ALTER SYSTEM SET shared_buffers = '$shared_buffers'" >/dev/null
scripts/pg.sh stop "$work/pg"
scripts/pg.sh start "$work/pg"
# shellcheck disable=SC1091
. "$work/pg/env"

step="generating the dataset"
log "$step ($tenants tenants x 100 listings)"
psql_q -d postgres -c "CREATE DATABASE data"
DATABASE_URL=$(url_of data) "$jobsd" migrate >/dev/null
psql_q -d data <<SQL
SELECT setseed(0.2026) \\gset
INSERT INTO tenants (id, name)
SELECT md5('fleet:' || t)::uuid, 'fleet ' || t FROM generate_series(1, $tenants) t;
INSERT INTO listings (id, tenant_id, external_id, title, status, price, currency)
SELECT md5(t.id || ':l:' || n)::uuid, t.id, 'MLB' || (1000000000 + n), 'Produto ' || n,
       'active', 99.90, 'BRL'
FROM tenants t CROSS JOIN generate_series(1, 100) n;
INSERT INTO listing_visits_daily (tenant_id, listing_id, date, visits, fetched_at)
SELECT l.tenant_id, l.id, (now() AT TIME ZONE '$tz')::date - d, floor(random() * 50)::int, now()
FROM listings l CROSS JOIN generate_series(0, 2) d;
CREATE TEMP TABLE bo AS
SELECT md5(t.id || ':o:' || d || ':' || k)::uuid AS id, t.id AS tenant_id,
       (d * 100 + k) AS n, 1 + floor(random() * 100)::int AS li,
       date_trunc('day', now() AT TIME ZONE '$tz') AT TIME ZONE '$tz'
         - d * interval '1 day' + random() * interval '20 hours' AS at
FROM tenants t CROSS JOIN generate_series(0, 2) d CROSS JOIN generate_series(1, 20) k;
INSERT INTO orders (id, tenant_id, external_id, status, currency, ordered_at, total_amount,
                    paid_amount, created_at, updated_at)
SELECT id, tenant_id, 9000000000 + n, 'paid', 'BRL', at, 99.90, 99.90, at, at FROM bo;
INSERT INTO order_items (tenant_id, order_id, listing_id, listing_external_id, quantity,
                         unit_price)
SELECT bo.tenant_id, bo.id, md5(bo.tenant_id || ':l:' || bo.li)::uuid,
       'MLB' || (1000000000 + bo.li), 1, 99.90
FROM bo;
SQL
psql_q -d data -c "VACUUM ANALYZE"
for d in "$db_a" "$db_b"; do psql_q -d postgres -c "CREATE DATABASE $d TEMPLATE data"; done

# ---------------------------------------------------------------- the floor (psql)
read -r from to <<<"$(psql_v -F ' ' -d data -c \
    "SELECT (now() AT TIME ZONE '$tz')::date - 1, (now() AT TIME ZONE '$tz')::date")"
floor_script=$work/floor.sql
{
    echo 'PREPARE rebuild(uuid, date, date, text, uuid) AS'
    cat sql/queries/rebuild_daily_metrics.sql
    echo ';'
    psql_v -d data -c "SELECT id FROM tenants ORDER BY id" | while read -r t; do
        cat <<SQL
INSERT INTO job_logs (tenant_id, job_type, status, dedupe_key, trigger, metadata)
VALUES ('$t', 'metrics_aggregation', 'running', 'metrics_aggregation:$t:$from:$to', 'cli',
        '{"bench": "psql"}') RETURNING id AS job_id \\gset
BEGIN;
$(cat sql/queries/rebuild_prologue.sql)
SELECT pg_advisory_xact_lock(hashtextextended('jobsd:metrics:$t', 0)) \\gset
EXECUTE rebuild('$t', '$from', '$to', '$tz', :'job_id') \\gset
SELECT to_char(max(date), 'YYYY-MM-DD') FROM listing_metrics_daily WHERE tenant_id = '$t' \\gset
UPDATE job_logs SET status = 'success', completed_at = now() WHERE id = :'job_id';
COMMIT;
SQL
    done
} >"$floor_script"

run_floor() {
    local t0 t1
    t0=$(date +%s%N)
    psql_q -d "$db_b" -f "$floor_script" >/dev/null
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
}

# ---------------------------------------------------------------- jobsd (two instances)
start_instance() {
    local n=$1 limit=$2 logf=$work/jobsd-$1.log port=""
    : >"$logf"
    env -i PATH="$PATH" HOME="${HOME:-/}" LANG=C.UTF-8 \
        DATABASE_URL="$(url_of "$db_a")" INTERNAL_JOBS_KEY="$key" PORT=0 \
        BIND_ADDRESS=127.0.0.1 JOBS_TIMEZONE="$tz" FLEET_MAX_RUNNING="$limit" \
        "$jobsd" serve >>"$logf" 2>&1 </dev/null &
    pids+=($!)
    for _ in $(seq 1 600); do
        port=$(sed -n 's/.*jobsd listening.* port=\([0-9][0-9]*\).*/\1/p' "$logf")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || die "jobsd $n did not start"
    ports[n]=$port
}

# Prints "wall_ms mean_child_ms".
run_jobsd() {
    local out id st
    out=$(curl -sS -X POST "http://127.0.0.1:${ports[1]}/api/v1/jobs/rebuild-daily-metrics" \
        -H "X-Internal-Key: $key" -H "Content-Type: application/json" \
        -H "Prefer: respond-async" -d '{"allTenants": true, "daysBack": 2}')
    id=$(sed -n 's/.*"jobLogId":"\([0-9a-f-]*\)".*/\1/p' <<<"$out")
    [ -n "$id" ] || die "no job id in $out"
    for _ in $(seq 1 36000); do
        st=$(psql_v -d "$db_a" -c "SELECT status FROM job_logs WHERE id = '$id'")
        [ "$st" = success ] || [ "$st" = error ] && break
        sleep 0.1
    done
    [ "$st" = success ] || die "the fleet parent ended $st"
    [ "$(psql_v -d "$db_a" -c "SELECT metadata->'result'->>'succeeded' FROM job_logs
        WHERE id = '$id'")" = "$tenants" ] || die "not every tenant succeeded"
    psql_v -F ' ' -d "$db_a" -c "
        SELECT round(extract(epoch FROM p.completed_at - p.created_at) * 1000),
               (SELECT round(avg(duration_ms)) FROM job_logs WHERE parent_id = p.id)
        FROM job_logs p WHERE p.id = '$id'"
}

digest() {
    psql_v -d "$1" -c "SELECT count(*) || ':' || md5(string_agg(row(tenant_id, listing_id,
        date, visits, orders, units, gmv, conversion)::text, ',' ORDER BY tenant_id,
        listing_id, date)) FROM listing_metrics_daily"
}

reset() {
    for d in "$db_a" "$db_b"; do
        psql_q -d "$d" -c "DELETE FROM listing_metrics_daily" -c "VACUUM listing_metrics_daily"
    done
    psql_q -d postgres -c CHECKPOINT
}

median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
rows=0
table=$work/table.md
printf '| FLEET_MAX_RUNNING | jobsd wall | floor (psql) | ratio | per tenant: jobsd, floor, overhead | a child (mean) | runs (jobsd/floor s) |\n|---|---|---|---|---|---|---|\n' >"$table"
# One row per limit: the default (4: every worker of the two instances busy) and 1 (children
# one at a time, as the floor runs them: the difference is jobsd's own cost per tenant).
for limit in 4 1; do
    step="starting two jobsd instances (FLEET_MAX_RUNNING=$limit)"
    stop_all
    start_instance 1 "$limit"
    start_instance 2 "$limit"
    walls=() floors=() childs=() ratios=() detail=""
    for r in $(seq 1 "$runs"); do
        step="run $r (FLEET_MAX_RUNNING=$limit)"
        reset
        if [ $((r % 2)) = 1 ]; then
            read -r w c <<<"$(run_jobsd)"
            f=$(run_floor)
        else
            f=$(run_floor)
            read -r w c <<<"$(run_jobsd)"
        fi
        if [ -z "$w" ] || [ -z "$c" ]; then die "the jobsd run failed"; fi
        [ "$(digest "$db_a")" = "$(digest "$db_b")" ] || die "jobsd and psql wrote different rows"
        log "FLEET_MAX_RUNNING=$limit run $r: jobsd ${w} ms (a child ${c} ms on average), floor ${f} ms"
        walls+=("$w") floors+=("$f") childs+=("$c")
        ratios+=("$(awk -v w="$w" -v f="$f" 'BEGIN { printf "%.3f", w / f }')")
        detail="$detail$(awk -v w="$w" -v f="$f" 'BEGIN { printf "%.1f/%.1f ", w / 1000, f / 1000 }')"
    done
    rows=$(psql_v -d "$db_a" -c "SELECT count(*) FROM listing_metrics_daily")
    awk -v w="$(median "${walls[@]}")" -v f="$(median "${floors[@]}")" \
        -v q="$(median "${ratios[@]}")" -v c="$(median "${childs[@]}")" -v n="$tenants" \
        -v l="$limit" -v d="$detail" 'BEGIN {
        printf "| %d | %.2f s | %.2f s | %.2f × | %.2f, %.2f, %+.2f ms | %.0f ms | %s|\n",
            l, w / 1000, f / 1000, q, w / n, f / n, (w - f) / n, c, d
    }' >>"$table"
done
echo "fleet: $tenants tenants x 100 listings, allTenants rebuild daysBack 2 ($rows rows), 2 instances x JOB_WORKERS=2; medians of $runs runs (ratio: median of the runs' ratios)"
cat "$table"
