#!/usr/bin/env bash
# Runs everything CI runs: installs what is missing, checks formatting, builds with warnings
# as errors under AddressSanitizer + UndefinedBehaviorSanitizer, starts a private PostgreSQL
# on a free port, runs every test (unit, integration, end-to-end) with ctest, and stops
# everything on exit, whatever happens.
#
#   scripts/test.sh                 everything
#   scripts/test.sh -R rebuild      only the tests whose name matches (ctest -R)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/bootstrap.sh

echo "== format check (clang-format)"
bad=$(find src include tests tools -name '*.[ch]' -print0 | xargs -0 clang-format --dry-run -Werror 2>&1 | grep -o '^[^:]*\.[ch]' | sort -u || true)
if [ -n "$bad" ]; then
    echo "not clang-formatted (run: clang-format -i <file>):" >&2
    echo "$bad" >&2
    exit 1
fi

build=build/asan
echo "== build ($build: -Werror, ASan+UBSan)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DJOBSD_SANITIZE=ON -DJOBSD_WERROR=ON >/dev/null
cmake --build "$build" -j "$(nproc)" 2>&1 | grep -vE '^\[ *[0-9]+%\]' || true
[ -x "$build/jobsd" ] || { echo "build failed" >&2; exit 1; }
cmake --build "$build" -j "$(nproc)" >/dev/null

pgdir=$(mktemp -d "${TMPDIR:-/tmp}/jobsd-test-pg.XXXXXX")
nodedir=$(mktemp -d "${TMPDIR:-/tmp}/jobsd-test-node.XXXXXX")
cleanup() {
    status=$?
    rm -rf "$nodedir"
    # Any jobsd a failed test left behind (only this build's binary).
    pkill -KILL -f "^$root/$build/jobsd" 2>/dev/null || true
    scripts/pg.sh stop "$pgdir" || true
    rm -rf "$pgdir"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== private PostgreSQL"
scripts/pg.sh start "$pgdir"
# shellcheck disable=SC1091
. "$pgdir/env"
export JOBSD_TEST_PG_URL=$JOBSD_PG_URL
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$root/tests/lsan.supp:print_suppressions=0

echo "== jsonwebtoken from the npm registry (JWT interop test)"
(cd "$nodedir" && npm install --silent --no-audit --no-fund --no-package-lock jsonwebtoken@9 >/dev/null)
export JOBSD_TEST_NODE_PATH=$nodedir/node_modules

echo "== tests"
start=$(date +%s)
ctest --test-dir "$build" --output-on-failure -j 2 --timeout 600 "$@"
echo "== ctest passed in $(( $(date +%s) - start )) s"

# Fuzzing only on full runs (not with ctest filters).
if [ $# -eq 0 ]; then
    secs=${JOBSD_FUZZ_SECONDS:-15}
    echo "== fuzz (libFuzzer + ASan/UBSan, ${secs} s per harness, committed seed corpora)"
    CC=clang cmake -S . -B build/fuzz -DJOBSD_FUZZ=ON -DJOBSD_TESTS=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
    cmake --build build/fuzz -j "$(nproc)" --target fuzz_jwt fuzz_body fuzz_prefer fuzz_ml >/dev/null
    for h in jwt body prefer ml; do
        work=$(mktemp -d "${TMPDIR:-/tmp}/jobsd-fuzz.XXXXXX")
        if ! build/fuzz/fuzz_$h -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
            -artifact_prefix="$work/" -print_final_stats=1 "$work" "tests/fuzz/corpus/$h" \
            >"$work/log" 2>&1; then
            tail -n 40 "$work/log" >&2
            echo "fuzz_$h found a problem; reproducer(s) in $work" >&2
            exit 1
        fi
        echo "fuzz_$h: $(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/log" | awk '{print $2}') runs, no sanitizer report"
        rm -rf "$work"
    done
fi
echo "== all tests passed in $(( $(date +%s) - start )) s"
