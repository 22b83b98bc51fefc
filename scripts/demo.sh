#!/usr/bin/env bash
# jobsd quick start: one command on a fresh Debian 12 machine (root, nothing running).
#
#   scripts/demo.sh          install what is missing, build a release binary, start a private
#                            PostgreSQL and `jobsd serve` (http://127.0.0.1:8080, or another
#                            free port) with a fake Mercado Livre API beside it
#                            (tests/fake_ml, scenario demo.json), load the demo data
#                            (sql/demo/seed.sql), sync the demo seller from the fake API,
#                            run the runbook's manual rebuild with curl, print the runbook's
#                            validation queries and status/stats calls with a minted JWT,
#                            print the operator console's URL with an operator token
#                            (sql/demo/console.sql adds failed and retried jobs and a stale
#                            tenant for it), and say how to go on
#   scripts/demo.sh stop     stop jobsd and the private PostgreSQL; keeps .demo/ (database,
#                            key, log), so the next `scripts/demo.sh` reuses them
#   scripts/demo.sh purge    stop, then delete .demo/ (database, key, log)
#
# Everything lives in .demo/ at the root of the checkout (git-ignored): pg/ (the cluster),
# env (the keys and URLs, mode 600), jobsd.log, jobsd.pid, fake_ml.log, fake_ml.pid. Running it again restarts both
# servers cleanly and reloads the demo data (job_logs history is kept). Exits non-zero, naming
# the failed step, when anything goes wrong, including a rebuild that is not "success": true.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$root"
demo=$root/.demo
jobsd=$root/build/release/jobsd
fake_ml=$root/build/release/tests/fake_ml/fake_ml
tenant=00000000-0000-4000-8000-000000000001
# The demo seller of tests/fake_ml/scenarios/demo.json (and of sql/demo/seed.sql).
ml_client_id=1234567890123456
ml_client_secret="demo-client-secret"
ml_seller=987654321
ml_access=APP_USR-1234567890123456-010124-dddddddddddddddddddddddddddddddd-987654321
ml_refresh=TG-demo00000000000000000000001-987654321
tz=America/Sao_Paulo

step="starting"
say() { printf '\n== %s\n' "$*"; }
die() {
    echo "demo.sh: $*" >&2
    exit 1
}

# ---------------------------------------------------------------- the PostgreSQL directory
# The cluster runs as the `postgres` user when we are root: it must be able to reach
# .demo/pg. A checkout under /root (mode 700) is not reachable, so the cluster then lives in
# /var/tmp/jobsd-demo-<hash of the checkout path>/pg; .demo/pgdir records where.
pg_dir() {
    if [ -f "$demo/pgdir" ]; then
        cat "$demo/pgdir"
        return
    fi
    local d=$demo/pg
    if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1 &&
        ! runuser -u postgres -- test -x "$demo" 2>/dev/null; then
        d=/var/tmp/jobsd-demo-$(printf '%s' "$root" | md5sum | cut -c1-12)/pg
    fi
    echo "$d" >"$demo/pgdir"
    echo "$d"
}

# ---------------------------------------------------------------- stopping
# Our jobsd: the pid recorded in .demo/jobsd.pid, if that process is still this checkout's
# binary (never anything found by name).
our_jobsd_pid() {
    local pid
    [ -f "$demo/jobsd.pid" ] || return 1
    pid=$(cat "$demo/jobsd.pid")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    # A rebuild replaces the file: the running process's exe then reads "... (deleted)".
    case "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" in
    "$jobsd" | "$jobsd (deleted)") ;;
    *) return 1 ;;
    esac
    echo "$pid"
}

stop_jobsd() {
    local pid
    if pid=$(our_jobsd_pid); then
        kill -TERM "$pid" 2>/dev/null || true
        # SHUTDOWN_GRACE_SECONDS is 25: running jobs get that long to finish.
        for _ in $(seq 1 300); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "demo.sh: jobsd (pid $pid) did not stop within 30 s; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "stopped jobsd (pid $pid)"
    fi
    rm -f "$demo/jobsd.pid"
}

stop_fake() {
    local pid
    [ -f "$demo/fake_ml.pid" ] || return 0
    pid=$(cat "$demo/fake_ml.pid")
    if [[ $pid =~ ^[0-9]+$ ]] && case "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" in
        "$fake_ml" | "$fake_ml (deleted)") true ;; *) false ;; esac; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        echo "stopped the fake Mercado Livre API (pid $pid)"
    fi
    rm -f "$demo/fake_ml.pid"
}

stop_all() {
    stop_jobsd
    stop_fake
    if [ -f "$demo/pgdir" ]; then
        local d
        d=$(cat "$demo/pgdir")
        if [ -f "$d/data/postmaster.pid" ]; then
            scripts/pg.sh stop "$d"
            echo "stopped PostgreSQL ($d)"
        fi
    fi
}

case "${1:-start}" in
start) ;;
stop)
    stop_all
    echo "kept $demo (database, key, log): scripts/demo.sh starts again with them;" \
        "scripts/demo.sh purge deletes them"
    exit 0
    ;;
purge)
    stop_all
    if [ -f "$demo/pgdir" ]; then
        d=$(cat "$demo/pgdir")
        case "$d" in
        "$demo"/*) ;;
        /var/tmp/jobsd-demo-*/pg) rm -rf "$(dirname "$d")" ;;
        esac
    fi
    rm -rf "$demo"
    echo "deleted $demo"
    exit 0
    ;;
-h | --help | help)
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 0
    ;;
*)
    echo "usage: scripts/demo.sh [start|stop|purge]" >&2
    exit 2
    ;;
esac

# ---------------------------------------------------------------- start
started_jobsd=no
on_exit() {
    local rc=$?
    if [ "$rc" != 0 ]; then
        echo >&2
        echo "demo.sh: FAILED while $step (exit $rc)" >&2
        if [ "$started_jobsd" = yes ] && [ -f "$demo/jobsd.log" ]; then
            echo "--- last lines of $demo/jobsd.log:" >&2
            tail -n 20 "$demo/jobsd.log" >&2 || true
        fi
        echo "demo.sh: stopping what this run started (the data in $demo is kept)" >&2
        stop_all >&2 || true
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

grep -qx '/.demo/' .gitignore 2>/dev/null ||
    echo "demo.sh: warning: .gitignore has no '/.demo/' line; do not commit .demo/ (it holds a key)" >&2

step="installing the packages (scripts/bootstrap.sh)"
say "$step"
scripts/bootstrap.sh
for tool in cmake curl; do
    command -v "$tool" >/dev/null || die "$tool is missing after scripts/bootstrap.sh"
done

mkdir -p "$demo"
chmod 0755 "$demo"

step="stopping a previous demo run"
stop_all >/dev/null

step="building the release binary (build/release)"
say "$step"
if ! { cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DJOBSD_TESTS=ON &&
    cmake --build build/release -j"$(nproc)" --target jobsd fake_ml; } >"$demo/build.log" 2>&1; then
    tail -n 40 "$demo/build.log" >&2
    die "the build failed (full output: $demo/build.log)"
fi
[ -x "$jobsd" ] || die "the build produced no $jobsd"
[ -x "$fake_ml" ] || die "the build produced no $fake_ml"
"$jobsd" version | sed -n 1p

step="starting the private PostgreSQL"
say "$step"
pgdir=$(pg_dir)
mkdir -p "$pgdir"
scripts/pg.sh start "$pgdir"
# shellcheck disable=SC1091
. "$pgdir/env"
command -v psql >/dev/null || die "psql is missing after scripts/bootstrap.sh"
psql_q() { psql -X -v ON_ERROR_STOP=1 -q "$@"; }
if [ "$(psql_q -At -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = 'jobsd'")" = 0 ]; then
    psql_q -d postgres -c "CREATE DATABASE jobsd"
    echo "created database jobsd"
else
    echo "reusing database jobsd"
fi
database_url="postgresql://postgres@127.0.0.1:$PGPORT/jobsd"

step="preparing the internal key (.demo/env)"
key=""
if [ -f "$demo/env" ]; then
    key=$(sed -n 's/^export INTERNAL_JOBS_KEY=//p' "$demo/env")
fi
random_hex() {
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'
}
if [ "${#key}" -lt 32 ]; then
    key=$(random_hex)
    [ "${#key}" = 64 ] || die "could not generate a key"
    echo "generated a new INTERNAL_JOBS_KEY in $demo/env"
fi
jwt_secret=""
if [ -f "$demo/env" ]; then
    jwt_secret=$(sed -n 's/^export JWT_SECRET=//p' "$demo/env")
fi
if [ "${#jwt_secret}" -lt 32 ]; then
    jwt_secret=$(random_hex)
    echo "generated a new JWT_SECRET in $demo/env"
fi

step="starting the fake Mercado Livre API (tests/fake_ml, demo.json)"
say "$step"
: >"$demo/fake_ml.log"
setsid "$fake_ml" --scenario tests/fake_ml/scenarios/demo.json --port 0 >>"$demo/fake_ml.log" 2>&1 </dev/null &
echo "$!" >"$demo/fake_ml.pid"
fake_port=""
for _ in $(seq 1 100); do
    fake_port=$(sed -n 's/.*fake_ml listening port=\([0-9][0-9]*\).*/\1/p' "$demo/fake_ml.log" | head -n 1)
    [ -n "$fake_port" ] && break
    sleep 0.1
done
[ -n "$fake_port" ] || die "the fake Mercado Livre API did not start (see $demo/fake_ml.log)"
ml_url=http://127.0.0.1:$fake_port
echo "fake Mercado Livre API at $ml_url (seller $ml_seller)"

# Port 8080 when nothing listens there, else any free port (PORT=0; the log tells which).
port=8080
if (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null; then
    echo "port 8080 is taken; jobsd will pick a free port"
    port=0
fi

write_env() {
    local old_umask
    old_umask=$(umask)
    umask 077
    cat >"$demo/env.tmp" <<ENV
# jobsd demo (scripts/demo.sh). Holds the internal key: keep it private (mode 600).
# Use it from a shell:  . .demo/env
export INTERNAL_JOBS_KEY=$key
export JWT_SECRET=$jwt_secret
export DATABASE_URL=$database_url
export ML_API_BASE_URL=$ml_url
export ML_CLIENT_ID=$ml_client_id
export ML_CLIENT_SECRET=$ml_client_secret
export ML_MAX_RPS=$ml_max_rps
export PORT=$1
export JOBSD_URL=http://127.0.0.1:$1
export JOBS_TIMEZONE=$tz
ENV
    umask "$old_umask"
    chmod 600 "$demo/env.tmp"
    mv "$demo/env.tmp" "$demo/env"
}

# Mercado Livre allows an application about 5 requests per second, jobsd's default. The
# fake API has no such limit: 50 per second makes the demo's ~330 requests take seconds
# instead of a minute (same code path; only the pacing differs).
ml_max_rps=50

step="starting jobsd serve"
say "$step"
start_jobsd() { # $1 = PORT to ask for; sets $listen_port, or returns 1 when it exited
    [ -f "$demo/jobsd.log" ] && mv "$demo/jobsd.log" "$demo/jobsd.log.prev"
    : >"$demo/jobsd.log"
    env -i PATH="$PATH" HOME="${HOME:-/}" LANG=C.UTF-8 \
        DATABASE_URL="$database_url" INTERNAL_JOBS_KEY="$key" PORT="$1" \
        JWT_SECRET="$jwt_secret" ML_API_BASE_URL="$ml_url" ML_CLIENT_ID="$ml_client_id" \
        ML_CLIENT_SECRET="$ml_client_secret" ML_MAX_RPS="$ml_max_rps" \
        BIND_ADDRESS=127.0.0.1 JOBS_TIMEZONE="$tz" MIGRATE_ON_START=true LOG_FORMAT=text \
        setsid "$jobsd" serve >>"$demo/jobsd.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$demo/jobsd.pid"
    started_jobsd=yes
    listen_port=""
    for _ in $(seq 1 600); do # 60 s: migrations run first
        listen_port=$(sed -n 's/.*jobsd listening.* port=\([0-9][0-9]*\).*/\1/p' "$demo/jobsd.log" | tail -n 1)
        [ -n "$listen_port" ] && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null || true
            rm -f "$demo/jobsd.pid"
            return 1
        fi
        sleep 0.1
    done
    die "jobsd did not report 'jobsd listening' within 60 s (see $demo/jobsd.log)"
}
if ! start_jobsd "$port"; then
    if [ "$port" = 8080 ] && grep -qi "cannot start the HTTP server" "$demo/jobsd.log"; then
        echo "jobsd could not listen on 8080; trying a free port"
        start_jobsd 0 || die "jobsd exited at start-up (see $demo/jobsd.log)"
    else
        tail -n 20 "$demo/jobsd.log" >&2
        die "jobsd exited at start-up (see $demo/jobsd.log)"
    fi
fi
port=$listen_port
write_env "$port"
url=http://127.0.0.1:$port

step="waiting for jobsd healthcheck"
ok=no
for _ in $(seq 1 100); do
    if PORT=$port "$jobsd" healthcheck >/dev/null 2>&1; then
        ok=yes
        break
    fi
    sleep 0.1
done
[ "$ok" = yes ] || die "jobsd healthcheck did not pass within 10 s (see $demo/jobsd.log)"
echo "jobsd $(sed -n 's/.*jobsd listening \(.*\)/\1/p' "$demo/jobsd.log" | tail -n 1)"
echo "GET $url/healthz: $(curl -sS --max-time 5 "$url/healthz")"

step="loading the demo data (sql/demo/seed.sql)"
say "$step"
psql_q -d "$database_url" -f sql/demo/seed.sql -P footer=off | sed '/setseed/,/^$/d'
# The operator console's first look: two weeks of job history with failures, a retry and a
# stale second tenant (sql/demo/console.sql).
psql_q -d "$database_url" -f sql/demo/console.sql -P footer=off | sed '/setseed/,/^$/d'

# The seller connected (what the product's OAuth flow would have stored).
psql_q -d "$database_url" -c "UPDATE marketplace_connections SET access_token = '$ml_access',
    refresh_token = '$ml_refresh', expires_at = now() + interval '5 hours', status = 'active'
    WHERE tenant_id = '$tenant' AND seller_id = $ml_seller" >/dev/null

# ---------------------------------------------------------------- the runbook's rebuild
pretty() { # pretty-prints a JSON file: jq, else python3, else as is
    if command -v jq >/dev/null && jq . "$1" 2>/dev/null; then
        return
    fi
    if command -v python3 >/dev/null && python3 -m json.tool "$1" 2>/dev/null; then
        return
    fi
    cat "$1"
    echo
}
json_success() { # is .success true?
    if command -v jq >/dev/null; then
        jq -e '.success == true' "$1" >/dev/null 2>&1
    elif command -v python3 >/dev/null; then
        python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1])).get("success") is True else 1)' "$1" 2>/dev/null
    else
        grep -Eq '"success"[[:space:]]*:[[:space:]]*true' "$1"
    fi
}

step="syncing the demo seller from the (fake) Mercado Livre API"
say "sync listings, orders (last 30 days) and visits from Mercado Livre (here: the fake API)"
echo "(ML_MAX_RPS=$ml_max_rps against the fake API: a few seconds; at the real API's 5 per second this sync takes about a minute)"
cat <<CMD
curl -X POST "$url/api/v1/jobs/sync-mercadolivre" \\
  -H "X-Internal-Key: \$INTERNAL_JOBS_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{"tenantId": "$tenant", "daysBack": 30}'

CMD
sync_result=$demo/sync.json
http_code=$(curl -X POST "$url/api/v1/jobs/sync-mercadolivre" \
    -H "X-Internal-Key: $key" -H "Content-Type: application/json" \
    -d '{"tenantId": "'"$tenant"'", "daysBack": 30}' \
    -sS --max-time 150 -o "$sync_result" -w '%{http_code}') ||
    die "curl failed (is jobsd still running? see $demo/jobsd.log)"
pretty "$sync_result"
echo "(HTTP $http_code)"
[ "$http_code" = 200 ] || die "the sync answered HTTP $http_code, not 200"
json_success "$sync_result" || die "the sync did not answer \"success\": true"

step="running the runbook's manual rebuild (curl)"
today=$(psql_q -At -d "$database_url" -c "SELECT (now() AT TIME ZONE '$tz')::date")
from=$(psql_q -At -d "$database_url" -c "SELECT (now() AT TIME ZONE '$tz')::date - 29")
say "rebuild the last 30 days ($from .. $today, $tz), as the runbook's rollback scenario 2 does"
cat <<CMD
curl -X POST "$url/api/v1/jobs/rebuild-daily-metrics" \\
  -H "X-Internal-Key: \$INTERNAL_JOBS_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{"tenantId": "$tenant", "from": "$from", "to": "$today"}'

CMD
result=$demo/rebuild.json
http_code=$(curl -X POST "$url/api/v1/jobs/rebuild-daily-metrics" \
    -H "X-Internal-Key: $key" \
    -H "Content-Type: application/json" \
    -d '{"tenantId": "'"$tenant"'", "from": "'"$from"'", "to": "'"$today"'"}' \
    -sS --max-time 150 -o "$result" -w '%{http_code}') ||
    die "curl failed (is jobsd still running? see $demo/jobsd.log)"
pretty "$result"
echo "(HTTP $http_code)"
[ "$http_code" = 200 ] || die "the rebuild answered HTTP $http_code, not 200"
json_success "$result" || die "the rebuild did not answer \"success\": true"
job_id=$(sed -n 's/.*"jobLogId"[[:space:]]*:[[:space:]]*"\([0-9a-f-]*\)".*/\1/p' "$result" | head -n 1)

# ---------------------------------------------------------------- the runbook's validation
step="running the runbook's validation queries"
run_sql() { # title, then SQL (printed, then run)
    say "$1"
    printf '%s\n\n' "$2"
    psql_q -d "$database_url" -P pager=off "${@:3}" -c "$2"
}
run_sql "job_logs: the latest metrics_aggregation runs (runbook query, expanded output)" \
    "SELECT
  id,
  job_type,
  status,
  started_at,
  completed_at,
  duration_ms,
  records_processed,
  error_message,
  metadata
FROM job_logs
WHERE job_type = 'metrics_aggregation'
ORDER BY started_at DESC
LIMIT 10;" -x -P format=wrapped -P columns=110
run_sql "MAX(date) per tenant" \
    "SELECT
  tenant_id,
  MAX(date) as max_date,
  COUNT(*) as total_records
FROM listing_metrics_daily
GROUP BY tenant_id;"
say "freshness (CURRENT_DATE is the session's: set to $tz first, see docs/operations.md)"
printf "SET TIME ZONE '%s';\n%s\n\n" "$tz" "SELECT
  CASE
    WHEN MAX(date) >= CURRENT_DATE - INTERVAL '1 day' THEN 'OK'
    ELSE 'DESATUALIZADO'
  END as status,
  MAX(date) as ultima_data
FROM listing_metrics_daily
WHERE tenant_id = '$tenant';"
psql_q -d "$database_url" -P pager=off <<SQL
SET TIME ZONE '$tz';
SELECT
  CASE
    WHEN MAX(date) >= CURRENT_DATE - INTERVAL '1 day' THEN 'OK'
    ELSE 'DESATUALIZADO'
  END as status,
  MAX(date) as ultima_data
FROM listing_metrics_daily
WHERE tenant_id = '$tenant';
SQL
run_sql "rows per date and source (runbook rollback scenario 2, step 1; the last 7 dates)" \
    "SELECT date, COUNT(*), source
FROM listing_metrics_daily
WHERE tenant_id = '$tenant'
GROUP BY date, source
ORDER BY date DESC
LIMIT 7;"

step="calling the web app's status and stats endpoints with a minted JWT"
token=$(JWT_SECRET="$jwt_secret" "$jobsd" token --tenant "$tenant" --user demo-user --ttl 86400)
say "the web app's view (JWT of the demo tenant, minted with: jobsd token --tenant $tenant)"
cat <<CMD
TOKEN=\$(build/release/jobsd token --tenant $tenant)   # uses JWT_SECRET from .demo/env
curl "$url/api/v1/jobs/status?jobType=metrics_aggregation&limit=10" -H "Authorization: Bearer \$TOKEN"
curl "$url/api/v1/jobs/stats" -H "Authorization: Bearer \$TOKEN"

CMD
curl -sS --max-time 10 "$url/api/v1/jobs/status?limit=2" -H "Authorization: Bearer $token" -o "$demo/status.json"
pretty "$demo/status.json"
curl -sS --max-time 10 "$url/api/v1/jobs/stats" -H "Authorization: Bearer $token" -o "$demo/stats.json"
pretty "$demo/stats.json"

step="minting an operator token for the console"
# `jobsd token --operator` (an operator JWT: "role": "operator", no tenant) comes with the
# operator API; a binary without it gets the instructions instead of a token.
if operator_token=$(JWT_SECRET="$jwt_secret" "$jobsd" token --operator --ttl 43200 2>/dev/null); then
    console_line="$url/console   (paste this operator token, valid 12 h; it stays in the tab's memory only):
             $operator_token"
else
    console_line="$url/console   (this jobsd has no \`jobsd token --operator\` yet: build one with the operator API)"
fi

step="done"
cat <<DONE

== jobsd demo is running
  server     $url   (bound to 127.0.0.1; health: $url/healthz, readiness: $url/readyz)
  console    $console_line
  keys       $demo/env  (INTERNAL_JOBS_KEY, JWT_SECRET, DATABASE_URL, PORT, ML_*; mode 600)
  fake ML    $ml_url  (tests/fake_ml; control API: $ml_url/__fake/stats)
  log        $demo/jobsd.log
  database   $database_url   (psql "\$DATABASE_URL" after loading .demo/env)
  tenant     $tenant  (Loja Demo)

Try (in a shell, from $root):
  . .demo/env
  curl -s "\$JOBSD_URL/readyz"
  # the same rebuild again: nothing changed, so rowsUpserted is 0
  curl -X POST "\$JOBSD_URL/api/v1/jobs/rebuild-daily-metrics" \\
    -H "X-Internal-Key: \$INTERNAL_JOBS_KEY" -H "Content-Type: application/json" \\
    -d '{"tenantId": "$tenant", "from": "$from", "to": "$today"}'
  # yesterday and today (the scheduler's daily window)
  curl -X POST "\$JOBSD_URL/api/v1/jobs/rebuild-daily-metrics" \\
    -H "X-Internal-Key: \$INTERNAL_JOBS_KEY" -H "Content-Type: application/json" \\
    -d '{"tenantId": "$tenant", "daysBack": 2}'
  # one job, by id
  curl -s "\$JOBSD_URL/api/v1/jobs/$job_id" -H "X-Internal-Key: \$INTERNAL_JOBS_KEY"
  # the web app's calls, with a JWT minted from JWT_SECRET
  TOKEN=\$(build/release/jobsd token --tenant $tenant)
  curl -s "\$JOBSD_URL/api/v1/jobs/status?limit=5" -H "Authorization: Bearer \$TOKEN"
  curl -s "\$JOBSD_URL/api/v1/jobs/stats?window=24h" -H "Authorization: Bearer \$TOKEN"
  # sync again (only what changed is rewritten)
  curl -X POST "\$JOBSD_URL/api/v1/jobs/sync-mercadolivre" \\
    -H "X-Internal-Key: \$INTERNAL_JOBS_KEY" -H "Content-Type: application/json" \\
    -d '{"tenantId": "$tenant", "daysBack": 7}'
  # the same job from the command line (no server needed)
  build/release/jobsd rebuild-daily-metrics --tenant $tenant --days-back 7
  psql "\$DATABASE_URL" -c "SELECT * FROM listing_metrics_daily WHERE tenant_id = '$tenant' AND orders > 0 ORDER BY date DESC, gmv DESC LIMIT 10"

Stop everything:  scripts/demo.sh stop    (keeps .demo/; scripts/demo.sh purge deletes it)
DONE
