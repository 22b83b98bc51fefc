#!/usr/bin/env bash
# The house's dependency rules, checked on what the compiler and linker see:
#   base → infrastructure → domain → api → main: a module may use its own layer or lower ones,
#   never a higher one; no cycle among modules; the external libraries stay in their modules.
# Two graphs are checked:
#   - link: from `nm` over the core library (and main.c's object when given): module A uses
#     module B when A's object has an undefined symbol that B's object defines;
#   - include: every #include "..." between src/*.c, src/*.h and include/jobsd/*.h.
# A module is a file's base name (src/job_store.c, include/jobsd/job_store.h: job_store); a
# private header src/<module>_private.h or _internal.h belongs to its module.
# Every module must be in the table below: a new file is placed in a layer on purpose.
#
#   scripts/check-layers.sh [LIBJOBSD_CORE.A [MAIN.C.O]]   (default: build/asan)
set -euo pipefail
cd "$(dirname "$0")/.."

lib=${1:-build/asan/libjobsd_core.a}
main_obj=${2:-$(dirname "$lib")/CMakeFiles/jobsd.dir/src/main.c.o}
[ -f "$lib" ] || {
    echo "check-layers: $lib not found (build first)" >&2
    exit 2
}

work=$(mktemp -d "${TMPDIR:-/tmp}/jobsd-layers.XXXXXX")
trap 'rm -rf "$work"' EXIT

# ------------------------------------------------------------------ the layers
# 1 base, 2 infrastructure, 3 domain, 4 api, 5 main. A pattern ends with * for a family.
cat >"$work/layers" <<'EOF'
log 1
err 1
buf 1
util 1
config 1
cron 1
metrics 1
router 2
http 2
http_server 2
http_request 2
http_internal 2
http_prefer 2
http_auth 2
http_wire 2
http_conn 2
internal_key 2
jwt 2
token_crypt 2
db 2
embedded 2
embedded_data 2
migrate 2
ml_parse 2
ml_client 2
ml_* 2
job 3
job_kinds 3
job_store 3
operator_store 3
job_lease 3
job_wait 3
job_exec 3
job_fleet 3
job_runner 3
job_rebuild 3
job_sync_ml 3
instance 3
job_* 3
sync_* 3
stats 3
scheduler 3
freshness 3
api 4
api_* 4
routes 4
app 5
cli_schedules 5
cli_token 5
main 5
EOF
names=(base infrastructure domain api main)

# layer NAME: the layer of a module (exact name first, then the families).
layer() {
    awk -v m="$1" '
        $1 == m { print $2; found = 1; exit }
        { pat[NR] = $1; lay[NR] = $2 }
        END {
            if (found) exit
            for (i = 1; i <= NR; i++)
                if (pat[i] ~ /\*$/ && index(m, substr(pat[i], 1, length(pat[i]) - 1)) == 1) {
                    print lay[i]; exit
                }
            print 0
        }' "$work/layers"
}

problems=0
fail() {
    echo "check-layers: $*" >&2
    problems=$((problems + 1))
}

# Checks one edge list ("from to" lines): every module known, nothing points up, no cycle.
check_graph() {
    local what=$1 edges=$2
    local m l
    for m in $(tr ' ' '\n' <"$edges" | sort -u); do
        l=$(layer "$m")
        if [ "$l" = 0 ]; then
            fail "$what: module \"$m\" is in no layer (add it to the table in $0)"
        fi
        echo "$m $l"
    done >"$work/$what.layers"
    while read -r from to; do
        lf=$(awk -v m="$from" '$1 == m { print $2 }' "$work/$what.layers")
        lt=$(awk -v m="$to" '$1 == m { print $2 }' "$work/$what.layers")
        if [ "$lf" != 0 ] && [ "$lt" != 0 ] && [ "$lt" -gt "$lf" ]; then
            fail "$what: $from (${names[$((lf - 1))]}) uses $to (${names[$((lt - 1))]}): dependencies point down only"
        fi
    done <"$edges"
    if ! tsort "$edges" >/dev/null 2>"$work/$what.tsort"; then
        fail "$what: a cycle among modules: $(grep -v 'input contains a loop' "$work/$what.tsort" | sed 's/^tsort: //' | tr '\n' ' ')"
    fi
}

# ------------------------------------------------------------------ link graph (nm)
module_of_object() { # "job_store.c.o" → job_store
    local b=${1##*/}
    echo "${b%%.c.o}"
}
{
    nm -A "$lib"
    [ -f "$main_obj" ] && nm -A "$main_obj" | sed "s|^$main_obj:|main.c.o:|"
} 2>/dev/null | sed -E 's|^[^:]*\.a:||' >"$work/nm"
# "object: [value] TYPE symbol" → defined (T D B R C G S V W, global) and undefined (U).
awk '{
        n = split($0, f, ":"); obj = f[1]; rest = substr($0, length(obj) + 2)
        k = split(rest, w, " "); sym = w[k]; type = w[k - 1]
        if (type ~ /^[TDBRCGSVW]$/) print "def", obj, sym
        else if (type == "U") print "use", obj, sym
    }' "$work/nm" >"$work/syms"
awk '
    $1 == "def" { def[$3] = $2 }
    $1 == "use" { use[NR] = $2 " " $3 }
    END {
        for (i in use) {
            split(use[i], u, " ")
            if ((u[2] in def) && def[u[2]] != u[1]) print u[1], def[u[2]]
        }
    }' "$work/syms" | sort -u | while read -r a b; do
    echo "$(module_of_object "$a") $(module_of_object "$b")"
done | awk '$1 != $2' | sort -u >"$work/link.edges"
[ -s "$work/link.edges" ] || fail "link: no dependency found in $lib (nm output empty?)"
check_graph link "$work/link.edges"

# External libraries stay in their modules.
check_library() {
    local lib_name=$1 symbols=$2 allowed=$3
    local users
    users=$(awk -v re="$symbols" '$1 == "use" && $3 ~ re { print $2 }' "$work/syms" | sort -u |
        while read -r o; do module_of_object "$o"; done | grep -vE "^($allowed)$" | sort -u | tr '\n' ' ' || true)
    [ -z "$users" ] || fail "link: $lib_name is used outside its modules ($allowed) by: $users"
}
check_library libcurl '^curl_' 'ml_client|ml_[a-z_]+'
check_library libmicrohttpd '^MHD_' 'http_server|http_request|http_wire|http_conn'
check_library OpenSSL '^(EVP_|HMAC|CRYPTO_|OPENSSL_|OpenSSL_|RAND_|ERR_)' \
    'jwt|internal_key|token_crypt|migrate'

# ------------------------------------------------------------------ include graph
# A module's private header (src/<module>_private.h, src/<module>_internal.h) is part of it.
own() {
    local m=$1
    m=${m%_private}
    echo "${m%_internal}"
}
for f in src/*.c src/*.h include/jobsd/*.h; do
    [ -f "$f" ] || continue
    from=$(basename "$f")
    from=$(own "${from%.*}")
    sed -nE 's/^#include "(jobsd\/)?([a-z0-9_]+)\.h".*/\2/p' "$f" | while read -r to; do
        to=$(own "$to")
        [ "$to" = "$from" ] || echo "$from $to"
    done
done | sort -u >"$work/include.edges"
check_graph include "$work/include.edges"

if [ "$problems" -gt 0 ]; then
    echo "check-layers: $problems problem(s)" >&2
    exit 1
fi
nmod=$(cat "$work/link.layers" "$work/include.layers" | awk '{ print $1 }' | sort -u | wc -l)
echo "check-layers: $nmod modules, $(wc -l <"$work/link.edges") link and $(wc -l <"$work/include.edges") include dependencies: no cycle, none points up a layer, libcurl/libmicrohttpd/OpenSSL in their modules"
