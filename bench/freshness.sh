#!/usr/bin/env bash
# The freshness query's cost on a fleet: sql/queries/freshness.sql (GET /api/v1/jobs/freshness
# and the periodic [INTERNAL-JOB] freshness check) under EXPLAIN (ANALYZE, BUFFERS).
#
#   bench/freshness.sh [TENANTS]      (default 1000)
#
# A private PostgreSQL cluster in a temporary directory (stopped and removed on exit), the
# migrations applied with psql, then TENANTS active tenants (every other one with an active
# Mercado Livre connection), each with 90 days of history in job_logs (a rebuild and a sync a
# day, one failed rebuild a week: 195 rows per tenant), 10 listings and 90 days of
# listing_metrics_daily; an eighth of the tenants (ids ending in 0 or 5)
# stopped being rebuilt and synced 3 days ago (stale).
# VACUUM ANALYZE, then the statement, PREPAREd verbatim, run 5 times per case: the
# periodic check (limit 0), the endpoint's default page (limit 100), the worst page (every
# tenant stale, limit 1000), and the periodic check without job_logs_tenant_type_success
# (dropped inside a transaction that is rolled back). Prints the median execution time of
# each case. About a minute on 2 cores.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$root"
tenants=${1:-1000}
case "$tenants" in '' | *[!0-9]*) echo "usage: bench/freshness.sh [TENANTS]" >&2; exit 2 ;; esac

work=$(mktemp -d "${TMPDIR:-/tmp}/jobsd-bench-fresh.XXXXXX")
chmod 755 "$work"
cleanup() {
    scripts/pg.sh stop "$work/pg" immediate >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
scripts/pg.sh start "$work/pg" >/dev/null
# shellcheck disable=SC1091
. "$work/pg/env"
export PGHOST PGPORT PGUSER
psql -qX -d postgres -c "CREATE DATABASE fresh" >/dev/null
export PGDATABASE=fresh
q() { psql -qXAt -v ON_ERROR_STOP=1 "$@"; }

q -c "CREATE EXTENSION IF NOT EXISTS pgcrypto" >/dev/null 2>&1 || true
for f in sql/[0-9][0-9][0-9][0-9]_*.sql; do
    q -f "$f" >/dev/null
done

q <<SQL
INSERT INTO tenants (id, name)
SELECT ('f0000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'seller ' || g
FROM generate_series(1, $tenants) g;
INSERT INTO marketplace_connections (tenant_id, seller_id, status)
SELECT id, row_number() OVER (), 'active' FROM tenants WHERE right(id::text, 1) ~ '[02468ace]';
-- 90 days: a rebuild and a sync a day, a failed rebuild every 7th day; the stale eighth
-- (ids ending in 0 or 5) stopped 3 days ago.
INSERT INTO job_logs (tenant_id, job_type, status, trigger, created_at, started_at,
                      completed_at, duration_ms)
SELECT t.id, ty, CASE WHEN ty = 'metrics_aggregation' AND d % 7 = 0 THEN 'error' ELSE 'success' END,
       'eventbridge', now() - d * interval '1 day', now() - d * interval '1 day',
       now() - d * interval '1 day' + interval '2 seconds', 2000
FROM tenants t, generate_series(0, 89) d, unnest(ARRAY['metrics_aggregation', 'mercadolivre_sync']) ty
WHERE NOT (right(t.id::text, 1) IN ('0', '5') AND d < 3);
INSERT INTO listings (tenant_id, external_id, status)
SELECT t.id, 'MLB' || g, 'active' FROM tenants t, generate_series(1, 10) g;
INSERT INTO listing_metrics_daily (tenant_id, listing_id, date)
SELECT l.tenant_id, l.id, current_date - d FROM listings l, generate_series(0, 89) d;
VACUUM ANALYZE;
SQL

rows=$(q -c "SELECT count(*) FROM job_logs")
types="{metrics_aggregation,mercadolivre_sync}"
sql=$(cat sql/queries/freshness.sql)
# median_ms LIMIT [PRE-SQL]: the median "Execution Time" of 5 EXPLAIN ANALYZE runs.
median_ms() {
    local limit=$1 pre=${2:-}
    for _ in 1 2 3 4 5; do
        q <<SQL | sed -nE 's/^Execution Time: ([0-9.]+) ms$/\1/p'
BEGIN;
$pre
PREPARE f(text[], text[], int, text, timestamptz, int) AS $sql;
EXPLAIN (ANALYZE, BUFFERS) EXECUTE f('$types', '{mercadolivre_sync}', 26, 'America/Sao_Paulo', NULL, $limit);
ROLLBACK;
SQL
    done | sort -n | sed -n 3p
}
check=$(median_ms 0)
page=$(median_ms 100)
worst=$(median_ms 1000 "UPDATE job_logs SET completed_at = completed_at - interval '200 days';")
noindex=$(median_ms 0 "DROP INDEX job_logs_tenant_type_success;")
stale=$(q -c "PREPARE f(text[], text[], int, text, timestamptz, int) AS $sql; EXECUTE f('$types', '{mercadolivre_sync}', 26, 'America/Sao_Paulo', NULL, 0);" |
    grep -oE '"staleTenants" ?: ?[0-9]+' | head -1 | grep -oE '[0-9]+$')
cat <<EOF2
freshness query, $tenants active tenants, $rows job_logs rows, $stale stale (PostgreSQL $(q -c "SHOW server_version"))
  periodic check (limit 0):                 $check ms
  endpoint, default page (limit 100):       $page ms
  endpoint, every tenant stale (limit 1000): $worst ms
  periodic check without the 0007 index:    $noindex ms
EOF2
