#!/usr/bin/env bash
# Runs everything CI runs: installs what is missing, checks formatting, builds with warnings
# as errors under AddressSanitizer + UndefinedBehaviorSanitizer, checks the house rules (no
# cycle among src/ modules, no dependency up a layer: scripts/check-layers.sh; no src/ file
# over 700 lines, no function over 80: scripts/check-size.sh), starts a private PostgreSQL
# on a free port, runs every test (unit, integration, end-to-end, chaos) with ctest, then
#  - the operator console in headless Chromium (tests/browser/console.test.mjs),
#  - the contract: every response jobsd gave those tests (recorded by tests/support/testhttp.c
#    in JOBSD_TEST_RECORD) validated against docs/openapi.yaml (scripts/check-contract.mjs),
#  - the end-to-end suite again with jobsd connected through PgBouncer (transaction pooling),
#  - a representative subset of the end-to-end and chaos tests with jobsd under valgrind
#    (a plain build, build/valgrind: 0 errors, 0 definite or indirect leaks),
#  - short libFuzzer runs,
#  - scripts/check-deploy.sh (OpenAPI, Dockerfile libraries, Terraform, systemd, compose;
#    `terraform validate`/`test` only when TF_PLUGIN_MIRROR names a provider mirror),
# and stops everything on exit, whatever happens (failure, Ctrl-C): every process a test
# started (recorded by tests/support in JOBSD_TEST_PIDDIR), every PostgreSQL cluster and the
# PgBouncer under the run's temporary directory, which is then removed.
#
#   scripts/test.sh                 everything
#   scripts/test.sh -R rebuild      only the tests whose name matches (ctest -R); no PgBouncer,
#                                   valgrind or fuzz stages
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
began=$(date +%s)
summary=()

# One line per stage, printed as it ends and again at the end.
stage_start=0
stage() {
    stage_start=$(date +%s)
    echo "== $*"
}
stage_done() {
    local line
    line="$1: $2 in $(($(date +%s) - stage_start)) s"
    summary+=("$line")
    echo "== $line"
}

stage "packages (scripts/bootstrap.sh)"
scripts/bootstrap.sh
stage_done "packages" "ok"

stage "format check (clang-format)"
bad=$(find src include tests tools -name '*.[ch]' -print0 | xargs -0 clang-format --dry-run -Werror 2>&1 | grep -o '^[^:]*\.[ch]' | sort -u || true)
if [ -n "$bad" ]; then
    echo "not clang-formatted (run: clang-format -i <file>):" >&2
    echo "$bad" >&2
    exit 1
fi
stage_done "format check" "ok"

build=build/asan
stage "build ($build: -Werror, ASan+UBSan)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DJOBSD_SANITIZE=ON -DJOBSD_WERROR=ON >/dev/null
cmake --build "$build" -j "$(nproc)" 2>&1 | grep -vE '^\[ *[0-9]+%\]' || true
[ -x "$build/jobsd" ] || { echo "build failed" >&2; exit 1; }
cmake --build "$build" -j "$(nproc)" >/dev/null
stage_done "build $build" "ok"

stage "house rules (scripts/check-layers.sh: nm over the core library, the includes; scripts/check-size.sh)"
scripts/check-layers.sh "$build/libjobsd_core.a"
scripts/check-size.sh
stage_done "house rules" "ok"

full=no
[ $# -eq 0 ] && full=yes
vgbuild=build/valgrind
if [ "$full" = yes ]; then
    stage "build ($vgbuild: -Werror, no sanitizers, for valgrind)"
    cmake -S . -B "$vgbuild" -DCMAKE_BUILD_TYPE=Debug -DJOBSD_SANITIZE=OFF -DJOBSD_WERROR=ON >/dev/null
    cmake --build "$vgbuild" -j "$(nproc)" 2>&1 | grep -vE '^\[ *[0-9]+%\]' || true
    cmake --build "$vgbuild" -j "$(nproc)" >/dev/null
    stage_done "build $vgbuild" "ok"
fi

# Everything the run creates lives under one directory (the tests' TMPDIR too: their logs,
# private clusters and valgrind reports), readable by the postgres user that runs clusters.
orig_tmp=${TMPDIR:-/tmp}
run_dir=$(mktemp -d "$orig_tmp/jobsd-test.XXXXXX")
chmod 0755 "$run_dir"
mkdir -p "$run_dir/pids" "$run_dir/tmp" "$run_dir/valgrind"
chmod 0755 "$run_dir/tmp" "$run_dir/valgrind"
export JOBSD_TEST_PIDDIR=$run_dir/pids
export TMPDIR=$run_dir/tmp
pgdir=$run_dir/pg
bouncerdir=$run_dir/pgbouncer
nodedir=$run_dir/node

passed=0
failed=0
cleanup() {
    status=$?
    set +e
    # Processes the tests started and did not reap (a crashed or interrupted test program):
    # each pid file names the executable, checked against /proc before the kill (the process
    # runs it, or valgrind runs it).
    for f in "$JOBSD_TEST_PIDDIR"/*; do
        [ -f "$f" ] || continue
        pid=${f##*/}
        exe=$(readlink -f "$(head -n 1 "$f")")
        [ -n "$exe" ] || continue
        if [ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" = "$exe" ] ||
            { [ -r "/proc/$pid/cmdline" ] && tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF -- "$exe"; }; then
            kill -KILL "$pid" 2>/dev/null
        fi
    done
    scripts/pg.sh pgbouncer-stop "$bouncerdir" 2>/dev/null
    # Every cluster under the run directory: the shared one and the chaos tests' own.
    find "$run_dir" -name postmaster.pid -path '*/data/postmaster.pid' 2>/dev/null |
        while read -r pidfile; do
            scripts/pg.sh stop "$(dirname "$(dirname "$pidfile")")" immediate
        done
    rm -rf "$run_dir"
    if [ ${#summary[@]} -gt 0 ]; then
        echo "== summary"
        printf '   %s\n' "${summary[@]}"
    fi
    echo "== scripts/test.sh $([ "$status" = 0 ] && echo passed || echo "FAILED (exit $status)") in $(($(date +%s) - began)) s"
    echo "tests: $passed passed, $failed failed"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stage "private PostgreSQL"
scripts/pg.sh start "$pgdir"
# shellcheck disable=SC1091
. "$pgdir/env"
export JOBSD_TEST_PG_URL=$JOBSD_PG_URL
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$root/tests/lsan.supp:print_suppressions=0
stage_done "private PostgreSQL" "port $PGPORT"

stage "jsonwebtoken from the npm registry (JWT interop test)"
mkdir -p "$nodedir"
# npm's own words are kept (not --silent) and shown when the install fails: a stage that fails
# without a reason (no network, a proxy, a registry mirror) leaves a newcomer guessing.
if ! (cd "$nodedir" && npm install --loglevel=error --no-audit --no-fund --no-package-lock \
    jsonwebtoken@9 >"$run_dir/npm-install.log" 2>&1); then
    echo "npm install jsonwebtoken@9 failed (the JWT interop test needs it); npm said:" >&2
    cat "$run_dir/npm-install.log" >&2
    exit 1
fi
export JOBSD_TEST_NODE_PATH=$nodedir/node_modules
stage_done "jsonwebtoken" "ok"

# Runs ctest, keeps its counts for the closing line.
run_ctest() {
    local log=$run_dir/ctest-$1.log
    shift
    local rc=0
    ctest "$@" 2>&1 | tee "$log" || rc=$?
    # Ctrl-C: ctest catches it and ends normally, so bash may not run its INT trap.
    if grep -q '(INTERRUPT)' "$log"; then
        echo "== interrupted" >&2
        exit 130
    fi
    local line
    line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
    if [ -n "$line" ]; then
        local f t
        f=$(echo "$line" | sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/')
        t=$(echo "$line" | sed -E 's/.* failed out of ([0-9]+).*/\1/')
        passed=$((passed + t - f))
        failed=$((failed + f))
    fi
    return $rc
}

# A failing stage does not stop the later ones (the whole picture in one run); the script
# fails at the end if any did.
failures=()
stage_failed() {
    failures+=("$1")
    stage_done "$1" "FAILED"
}

# A test that hangs is cut off after this long (the slowest takes about a minute on 2 cores
# with ASan), so one hang cannot push the suite past its 15-minute budget.
per_test_timeout=240
# Every response jobsd gives the tests' raw HTTP client is appended here (one JSON line each),
# for the contract stage below.
record=$run_dir/responses.jsonl
stage "tests (ctest: unit, integration, e2e, chaos)"
if JOBSD_TEST_RECORD=$record run_ctest main --test-dir "$build" --output-on-failure -j 2 \
    --timeout "$per_test_timeout" "$@"; then
    stage_done "ctest (unit, integration, e2e, chaos)" "passed"
else
    stage_failed "ctest (unit, integration, e2e, chaos)"
fi

# The document and the server cannot drift apart: each recorded response is matched to its
# operation in docs/openapi.yaml (path template, method, status) and validated (headers,
# Content-Type, body against the schema: Ajv, JSON Schema 2020-12, ajv-formats).
stage "contract (scripts/check-contract.mjs: jobsd's responses to the tests against docs/openapi.yaml)"
contract_node=$run_dir/contract-node
mkdir -p "$contract_node"
if ! (cd "$contract_node" && npm install --silent --no-audit --no-fund --no-package-lock \
    ajv@8 ajv-formats@3 yaml@2 >/dev/null); then
    echo "could not install ajv, ajv-formats and yaml from the npm registry" >&2
    stage_failed "contract"
elif [ ! -s "$record" ]; then
    if [ "$full" = yes ]; then
        echo "no jobsd response was recorded: tests/support/testhttp.c's recorder is broken" >&2
        stage_failed "contract"
    else
        stage_done "contract" "skipped (no test talked to jobsd)"
    fi
elif node scripts/check-contract.mjs --modules "$contract_node/node_modules" docs/openapi.yaml \
    "$record" 2>&1 | tee "$run_dir/contract.log"; then
    stage_done "contract" "passed ($(head -n 1 "$run_dir/contract.log" | sed 's/^check-contract: //'))"
else
    # Kept outside the run directory, which is removed on exit: rerun the check on it.
    kept=$(mktemp "$orig_tmp/jobsd-responses.XXXXXX")
    cp "$record" "$kept"
    echo "the recorded responses are kept in $kept (node scripts/check-contract.mjs --modules DIR docs/openapi.yaml $kept)" >&2
    stage_failed "contract"
fi

# The operator console in headless Chromium (Debian's chromium, driven by puppeteer-core from
# the npm registry): tests/browser/console.test.mjs. Full runs, and -R runs naming the console
# or the browser. It runs the real operator API when this jobsd has one, else the page with
# the API stubbed in the browser (it says which). Its screenshots are kept in
# build/browser-artifacts (the run directory is removed on exit).
browser_stage=no
if [ "$full" = yes ] || [[ "$*" =~ console|browser ]]; then browser_stage=yes; fi
if [ "$browser_stage" = yes ]; then
    stage "browser (tests/browser/console.test.mjs: headless Chromium, puppeteer-core)"
    browser_node=$run_dir/browser-node
    shots=$run_dir/browser-artifacts
    mkdir -p "$browser_node"
    if ! (cd "$browser_node" && npm install --loglevel=error --no-audit --no-fund --no-package-lock \
        puppeteer-core@23 >"$run_dir/npm-browser.log" 2>&1); then
        echo "npm install puppeteer-core@23 failed; npm said:" >&2
        cat "$run_dir/npm-browser.log" >&2
        stage_failed "browser"
    elif PUPPETEER_SKIP_DOWNLOAD=1 timeout 120 node tests/browser/console.test.mjs \
        --modules "$browser_node/node_modules" --jobsd "$build/jobsd" --artifacts "$shots" \
        2>&1 | tee "$run_dir/browser.log"; [ "${PIPESTATUS[0]}" = 0 ]; then
        passed=$((passed + 1))
        stage_done "browser" "passed ($(grep -o '^console.test: [a-z]* mode' "$run_dir/browser.log" | sed 's/console.test: //'); $(sed -n 's/^console.test: figures: //p' "$run_dir/browser.log"))"
    else
        failed=$((failed + 1))
        stage_failed "browser"
    fi
    rm -rf build/browser-artifacts
    [ -d "$shots" ] && cp -r "$shots" build/browser-artifacts && echo "screenshots: build/browser-artifacts"
fi

if [ "$full" = yes ]; then
    stage "end-to-end tests again, jobsd through PgBouncer (pool_mode = transaction)"
    scripts/pg.sh pgbouncer "$bouncerdir" "$PGPORT"
    # shellcheck disable=SC1091
    . "$bouncerdir/env"
    if JOBSD_TEST_PGBOUNCER_PORT=$PGBOUNCER_PORT run_ctest pgbouncer --test-dir "$build" -L e2e \
        --output-on-failure -j 2 --timeout "$per_test_timeout"; then
        logins=$(grep -c 'login attempt' "$bouncerdir/pgbouncer.log" || true)
        if [ "${logins:-0}" -gt 0 ]; then
            stage_done "ctest -L e2e through PgBouncer" "passed ($logins client logins through PgBouncer)"
        else
            echo "PgBouncer saw no connection: jobsd did not go through it" >&2
            stage_failed "ctest -L e2e through PgBouncer"
        fi
    else
        stage_failed "ctest -L e2e through PgBouncer"
    fi
    scripts/pg.sh pgbouncer-stop "$bouncerdir"

    stage "jobsd under valgrind ($vgbuild): e2e and chaos subset"
    vgtests='^(test_http|test_jobs|test_cli|test_jwt_api|test_chaos_shutdown|test_chaos_instances)$'
    vg_ok=yes
    JOBSD_VALGRIND=1 TMPDIR=$run_dir/valgrind run_ctest valgrind --test-dir "$vgbuild" \
        -R "$vgtests" --output-on-failure -j 2 --timeout "$((per_test_timeout + 120))" || vg_ok=no
    reports=$(find "$run_dir/valgrind" -name 'valgrind-*.log' | wc -l)
    errors=0 definite=0 indirect=0
    if [ "$reports" -gt 0 ]; then
        errors=$(cat "$run_dir"/valgrind/valgrind-*.log | sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' | awk '{s += $1} END {print s + 0}')
        definite=$(cat "$run_dir"/valgrind/valgrind-*.log | sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' | tr -d , | awk '{s += $1} END {print s + 0}')
        indirect=$(cat "$run_dir"/valgrind/valgrind-*.log | sed -n 's/.*indirectly lost: \([0-9,]*\) bytes.*/\1/p' | tr -d , | awk '{s += $1} END {print s + 0}')
    else
        echo "no valgrind report: jobsd did not run under valgrind" >&2
        vg_ok=no
    fi
    if [ "$errors" != 0 ] || [ "$definite" != 0 ] || [ "$indirect" != 0 ]; then
        grep -l -E 'ERROR SUMMARY: [1-9]|(definitely|indirectly) lost: [1-9]' "$run_dir"/valgrind/valgrind-*.log |
            head -n 3 | xargs -r tail -n 60 >&2
        vg_ok=no
    fi
    echo "valgrind: $reports jobsd processes, $errors errors, $definite bytes definitely lost, $indirect bytes indirectly lost"
    if [ "$vg_ok" = yes ]; then
        stage_done "valgrind" "passed ($reports jobsd processes, 0 errors, 0 bytes definitely or indirectly lost)"
    else
        stage_failed "valgrind ($errors errors, $definite bytes definitely lost, $indirect indirectly)"
    fi

    secs=${JOBSD_FUZZ_SECONDS:-15}
    stage "fuzz (libFuzzer + ASan/UBSan, ${secs} s per harness, committed seed corpora)"
    fuzz_ok=yes
    harnesses="jwt body prefer ml"
    if ! { CC=clang cmake -S . -B build/fuzz -DJOBSD_FUZZ=ON -DJOBSD_TESTS=OFF \
        -DCMAKE_BUILD_TYPE=Debug >"$run_dir/fuzz-build.log" 2>&1 &&
        cmake --build build/fuzz -j "$(nproc)" --target fuzz_jwt fuzz_body fuzz_prefer fuzz_ml \
            >>"$run_dir/fuzz-build.log" 2>&1; }; then
        grep -E 'error' "$run_dir/fuzz-build.log" | head -n 20 >&2
        echo "the fuzz build (clang) failed" >&2
        fuzz_ok=no
        harnesses=""
    fi
    for h in $harnesses; do
        # Outside the run directory: a reproducer must survive the clean-up.
        work=$(mktemp -d "$orig_tmp/jobsd-fuzz.XXXXXX")
        if ! build/fuzz/fuzz_"$h" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
            -artifact_prefix="$work/" -print_final_stats=1 "$work" "tests/fuzz/corpus/$h" \
            >"$work/log" 2>&1; then
            tail -n 40 "$work/log" >&2
            echo "fuzz_$h found a problem; reproducer(s) in $work" >&2
            fuzz_ok=no
            continue
        fi
        echo "fuzz_$h: $(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/log" | awk '{print $2}') runs, no sanitizer report"
        rm -rf "$work"
    done
    if [ "$fuzz_ok" = yes ]; then
        stage_done "fuzz" "passed (4 harnesses, no sanitizer report)"
    else
        stage_failed "fuzz"
    fi

    # Deployment artifacts against the code and real validators (OpenAPI lint, routes,
    # image libraries, terraform fmt/validate/test when available, systemd unit, compose).
    stage "deployment artifacts (scripts/check-deploy.sh)"
    if scripts/check-deploy.sh "build/asan/jobsd"; then
        stage_done "deployment artifacts" "ok"
    else
        stage_failed "deployment artifacts"
    fi
fi
if [ ${#failures[@]} -gt 0 ]; then
    echo "== FAILED: ${failures[*]}" >&2
    exit 1
fi
echo "== all tests passed in $(($(date +%s) - began)) s"
