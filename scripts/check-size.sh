#!/usr/bin/env bash
# The house's size rules for src/: no file over 700 lines, no function over 80 lines
# (declarative tables are initialisers, not functions, and are not counted). The code is
# clang-formatted (BreakBeforeBraces: Linux), so a function body is a line "{" at column 0
# up to the next line "}" at column 0.
#
#   scripts/check-size.sh [MAX_FILE_LINES [MAX_FUNCTION_LINES]]   (default 700 80)
set -euo pipefail
cd "$(dirname "$0")/.."
max_file=${1:-700}
max_fn=${2:-80}
problems=0
for f in src/*.c src/*.h; do
    n=$(wc -l <"$f")
    if [ "$n" -gt "$max_file" ]; then
        echo "check-size: $f has $n lines (at most $max_file)" >&2
        problems=$((problems + 1))
    fi
done
long=$(awk -v max="$max_fn" '
    FNR == 1 { start = 0 }
    /^\{/ { start = FNR; name = prev }
    /^\}/ && start { if (FNR - start + 1 > max) printf "%s:%d: %d lines: %s\n", FILENAME, start, FNR - start + 1, name; start = 0 }
    { prev = $0 }' src/*.c)
if [ -n "$long" ]; then
    echo "check-size: functions over $max_fn lines:" >&2
    echo "$long" >&2
    problems=$((problems + $(echo "$long" | wc -l)))
fi
[ "$problems" -eq 0 ] || exit 1
biggest=$(wc -l src/*.c src/*.h | sort -n | grep -v ' total$' | tail -n 1 | awk '{ print $2 " (" $1 ")" }')
echo "check-size: every src/ file within $max_file lines (largest $biggest), every function within $max_fn"
