#!/usr/bin/env bash
# Checks the deployment artifacts against the code and against real validators:
#
#   1. docs/openapi.yaml is a valid OpenAPI 3.1 document: `redocly lint` (@redocly/cli from
#      the npm registry, installed into a temporary directory), no errors and no warnings.
#   2. Its operations are exactly the router's: every METHOD PATH of `jobsd routes` is
#      documented and nothing else is (HEAD and OPTIONS aside), path templates identical;
#      its JobType enum is exactly the job types of `jobsd kinds` (the kind registry).
#   3. The runtime image installs a Debian package for every shared library jobsd links
#      directly (readelf + dpkg; skipped off Debian).
#   4. No Terraform code reads a secret's value (a data source's result is stored in the
#      state); deploy/terraform/sync-connection-key.sh, run against a stub AWS CLI, passes the
#      key to the connection exactly, through a private file only (never argv), and refuses a
#      short key or one with a newline. `terraform fmt -check -recursive deploy/terraform`
#      (skipped without terraform) and, when TF_PLUGIN_MIRROR names a provider mirror
#      directory holding hashicorp/aws, `terraform validate` of deploy/terraform/prod and
#      prod-apprunner and `terraform test` of the scheduler module (a mocked provider:
#      offline, no AWS account).
#   5. `systemd-analyze verify` of deploy/systemd/jobsd.service (ExecStart pointed at the
#      jobsd under test) and its sandboxing exposure at most 2.0 (skipped without systemd).
#   6. `docker compose config` of docker-compose.yml (skipped without compose).
#
#   scripts/check-deploy.sh [JOBSD_BIN]      (or JOBSD_BIN=... scripts/check-deploy.sh)
#
# Quiet on success (one line, plus one per skipped check); exit 1 on any failure, 2 on a
# usage error. Network: only the npm registry (Redocly telemetry, Terraform's checkpoint and
# update checks are switched off). Temporary files are removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

REDOCLY_VERSION=2.77.0

jobsd=${1:-${JOBSD_BIN:-}}
if [ -z "$jobsd" ]; then
    echo "usage: scripts/check-deploy.sh JOBSD_BIN (or set JOBSD_BIN)" >&2
    exit 2
fi
case $jobsd in /*) ;; *) jobsd=$(pwd)/$jobsd ;; esac
if [ ! -x "$jobsd" ]; then
    echo "check-deploy: $jobsd is not an executable" >&2
    exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/jobsd-check-deploy.XXXXXX")
trap 'rm -rf "$work"' EXIT

failures=0
done_checks=()
fail() {
    echo "check-deploy: FAIL: $*" >&2
    failures=$((failures + 1))
}
skip() { echo "check-deploy: skipped: $*"; }

export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
export NO_UPDATE_NOTIFIER=1 npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false

# ------------------------------------------------------------------ 1. OpenAPI lint
openapi=docs/openapi.yaml
bundle=$work/openapi.json
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    fail "node and npm are needed to validate $openapi (scripts/bootstrap.sh installs them)"
elif ! npm install --prefix "$work/npm" --no-package-lock --silent \
    "@redocly/cli@$REDOCLY_VERSION" >"$work/npm.log" 2>&1; then
    cat "$work/npm.log" >&2
    fail "could not install @redocly/cli@$REDOCLY_VERSION from the npm registry"
else
    redocly=$work/npm/node_modules/.bin/redocly
    if ! "$redocly" lint "$openapi" >"$work/lint.log" 2>&1; then
        sed -n '/validating/,$p' "$work/lint.log" >&2
        fail "$openapi does not validate (redocly lint)"
    elif grep -Eq 'You have [0-9]+ warning' "$work/lint.log"; then
        sed -n '/validating/,$p' "$work/lint.log" >&2
        fail "$openapi has lint warnings"
    else
        done_checks+=("openapi lint")
    fi
    if ! "$redocly" bundle "$openapi" --ext json -o "$bundle" >"$work/bundle.log" 2>&1; then
        cat "$work/bundle.log" >&2
        fail "redocly bundle $openapi failed"
    fi
fi

# ------------------------------------------------------------------ 2. routes = operations
if [ -s "$bundle" ]; then
    if ! "$jobsd" routes >"$work/routes.raw" 2>"$work/routes.err"; then
        cat "$work/routes.err" >&2
        fail "\`jobsd routes\` failed"
    else
        awk 'NF >= 2 && $1 != "HEAD" && $1 != "OPTIONS" { print $1, $2 }' "$work/routes.raw" |
            LC_ALL=C sort -u >"$work/routes"
        node -e '
            const doc = require(process.argv[1]);
            const methods = ["get", "put", "post", "delete", "patch", "trace"];
            for (const [path, item] of Object.entries(doc.paths || {}))
                for (const m of methods)
                    if (item[m]) console.log(m.toUpperCase() + " " + path);
        ' "$bundle" | LC_ALL=C sort -u >"$work/documented"
        if [ ! -s "$work/routes" ]; then
            fail "\`jobsd routes\` printed no route"
        elif ! diff -u --label "jobsd routes" --label "$openapi" "$work/routes" \
            "$work/documented" >"$work/routes.diff"; then
            cat "$work/routes.diff" >&2
            fail "$openapi and the router disagree (- only in jobsd routes, + only in $openapi)"
        else
            done_checks+=("routes")
        fi
    fi
    # The job types the document lists (components.schemas.JobType) are the registry's.
    if ! "$jobsd" kinds >"$work/kinds.raw" 2>"$work/kinds.err"; then
        cat "$work/kinds.err" >&2
        fail "\`jobsd kinds\` failed"
    else
        awk 'NF >= 2 { print $1 }' "$work/kinds.raw" | LC_ALL=C sort -u >"$work/kinds"
        node -e '
            const doc = require(process.argv[1]);
            const t = ((doc.components || {}).schemas || {}).JobType || {};
            for (const v of t.enum || []) console.log(v);
        ' "$bundle" | LC_ALL=C sort -u >"$work/documented-kinds"
        if [ ! -s "$work/kinds" ]; then
            fail "\`jobsd kinds\` printed no kind"
        elif ! diff -u --label "jobsd kinds" --label "$openapi JobType" "$work/kinds" \
            "$work/documented-kinds" >"$work/kinds.diff"; then
            cat "$work/kinds.diff" >&2
            fail "$openapi's JobType enum and the job kind registry disagree"
        else
            done_checks+=("job types")
        fi
    fi
fi

# ------------------------------------------------------------------ 3. runtime libraries
if command -v readelf >/dev/null && command -v dpkg >/dev/null && command -v ldconfig >/dev/null; then
    runtime_stage=$(sed -n '/^FROM .* AS runtime$/,$p' Dockerfile)
    if [ -z "$runtime_stage" ]; then
        fail "Dockerfile has no 'AS runtime' stage"
    else
        missing=()
        # (No early exit in these pipelines: with pipefail, SIGPIPE would count as failure.)
        for lib in $(readelf -d "$jobsd" 2>/dev/null | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
            case $lib in
            libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | ld-linux* | \
                libgcc_s.so.* | libasan.so.* | libubsan.so.* | liblsan.so.* | libtsan.so.*) continue ;;
            esac
            path=$(ldconfig -p | awk -v l="$lib" '$1 == l && !found { print $NF; found = 1 }')
            pkg=""
            if [ -n "$path" ]; then
                pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | awk -F: 'NR == 1 { print $1 }') || true
            fi
            if [ -z "$pkg" ]; then
                fail "cannot tell which Debian package provides $lib"
            elif ! grep -Eq "(^|[[:space:]])$pkg([[:space:]]|\$)" <<<"$runtime_stage"; then
                missing+=("$pkg ($lib)")
            fi
        done
        if [ ${#missing[@]} -gt 0 ]; then
            fail "the Dockerfile's runtime stage does not install: ${missing[*]}"
        else
            done_checks+=("image libraries")
        fi
    fi
else
    skip "image library check (needs readelf, dpkg and ldconfig)"
fi

# ------------------------------------------------------------------ 4. Terraform
# A data source that reads a secret's value puts it in the state (the internal key once went
# there through the connection): the key reaches EventBridge through sync-connection-key.sh.
if readers=$(grep -rnE '^[[:space:]]*data[[:space:]]+"(aws_secretsmanager_secret_version|aws_ssm_parameter)"' \
    --include='*.tf' deploy/terraform); then
    echo "$readers" >&2
    fail "deploy/terraform reads a secret's value into the Terraform state (use sync-connection-key.sh, or an ephemeral resource into a write-only argument)"
else
    done_checks+=("no secret in state")
fi
# sync-connection-key.sh against a stub `aws` that records its arguments and the file:// it
# is given: the key reaches update-connection exactly, in a mode-600 file, never on a command
# line, and nothing is left behind; a short key, or one with a newline, is refused.
mkdir -p "$work/stub/bin" "$work/stub/out" "$work/stub/tmp"
cat >"$work/stub/bin/aws" <<'STUB_END'
#!/usr/bin/env bash
printf '%s\n' "$*" >>"$STUB_OUT/argv"
case "$1 $2" in
"secretsmanager get-secret-value") printf '%s\n' "$STUB_SECRET" ;;
"events update-connection")
    for a in "$@"; do
        case $a in file://*) cp "${a#file://}" "$STUB_OUT/auth.json" && stat -c %a "${a#file://}" >"$STUB_OUT/mode" ;; esac
    done ;;
"events describe-connection") echo AUTHORIZED ;;
esac
STUB_END
chmod +x "$work/stub/bin/aws"
sync_key() {
    STUB_OUT=$work/stub/out STUB_SECRET=$1 PATH="$work/stub/bin:$PATH" TMPDIR=$work/stub/tmp \
        deploy/terraform/sync-connection-key.sh --region us-east-2
}
stub_key='k3y"with\quote-0123456789abcdef0123456789abcdef'
sync_ok=yes
if ! sync_key "$stub_key" >"$work/stub/log" 2>&1; then
    cat "$work/stub/log" >&2
    sync_ok=no
elif ! node -e '
        const fs = require("fs");
        const a = JSON.parse(fs.readFileSync(process.argv[1], "utf8")).ApiKeyAuthParameters;
        process.exit(a.ApiKeyName === "X-Internal-Key" && a.ApiKeyValue === process.argv[2] ? 0 : 1);
    ' "$work/stub/out/auth.json" "$stub_key" 2>/dev/null ||
    [ "$(cat "$work/stub/out/mode")" != 600 ] || grep -qF 0123456789abcdef "$work/stub/out/argv" ||
    [ -n "$(ls -A "$work/stub/tmp")" ]; then
    echo "sync-connection-key.sh: the key did not reach update-connection exactly, in a mode-600 file only, cleaned up afterwards" >&2
    sync_ok=no
fi
for bad in short-key $'0123456789abcdef0123456789abcdef\n'; do
    if sync_key "$bad" >/dev/null 2>&1; then
        echo "sync-connection-key.sh accepted a bad key (${#bad} bytes)" >&2
        sync_ok=no
    fi
done
if [ $sync_ok = yes ]; then
    done_checks+=("sync-connection-key")
else
    fail "deploy/terraform/sync-connection-key.sh (against a stub AWS CLI)"
fi

if command -v terraform >/dev/null; then
    # An empty CLI configuration: nothing from the caller's (a missing file only warns).
    : >"$work/empty.tfrc"
    if ! TF_CLI_CONFIG_FILE=$work/empty.tfrc terraform fmt -check -recursive -diff deploy/terraform \
        >"$work/fmt.log" 2>&1; then
        cat "$work/fmt.log" >&2
        fail "terraform fmt -check -recursive deploy/terraform (run: terraform fmt -recursive deploy/terraform)"
    else
        done_checks+=("terraform fmt")
    fi
    mirror=${TF_PLUGIN_MIRROR:-}
    if [ -n "$mirror" ] && [ -d "$mirror/registry.terraform.io/hashicorp/aws" ]; then
        cat >"$work/mirror.tfrc" <<EOF
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/*/*"]
  }
  direct {
    exclude = ["registry.terraform.io/*/*"]
  }
}
EOF
        # A copy without local state or providers (a real `terraform init` may have left some).
        mkdir -p "$work/tf"
        (cd deploy/terraform && tar -cf - --exclude=.terraform --exclude='*.tfstate*' .) |
            (cd "$work/tf" && tar -xf -)
        ok=yes
        for root in prod prod-apprunner; do
            if ! (cd "$work/tf/$root" &&
                TF_CLI_CONFIG_FILE=$work/mirror.tfrc terraform init -backend=false -input=false -no-color &&
                TF_CLI_CONFIG_FILE=$work/mirror.tfrc terraform validate -no-color) >"$work/validate.log" 2>&1; then
                cat "$work/validate.log" >&2
                fail "terraform validate deploy/terraform/$root"
                ok=no
            fi
        done
        [ $ok = yes ] && done_checks+=("terraform validate")
        # The scheduler module's plan-level tests (mocked provider, no AWS account).
        if ! (cd "$work/tf/modules/jobsd-scheduler" &&
            TF_CLI_CONFIG_FILE=$work/mirror.tfrc terraform init -backend=false -input=false -no-color &&
            TF_CLI_CONFIG_FILE=$work/mirror.tfrc terraform test -no-color) >"$work/tftest.log" 2>&1; then
            cat "$work/tftest.log" >&2
            fail "terraform test deploy/terraform/modules/jobsd-scheduler"
        else
            done_checks+=("terraform test")
        fi
    else
        skip "terraform validate and test (set TF_PLUGIN_MIRROR to a provider mirror directory with hashicorp/aws)"
    fi
else
    skip "terraform fmt -check and validate (terraform is not installed)"
fi

# ------------------------------------------------------------------ 5. systemd unit
unit=deploy/systemd/jobsd.service
if command -v systemd-analyze >/dev/null; then
    # verify checks that ExecStart exists: point it at the binary under test, under the
    # unit's own name (verify derives the unit type and name from the file name).
    mkdir -p "$work/systemd"
    sed "s#^ExecStart=/usr/local/bin/jobsd #ExecStart=$jobsd #" "$unit" >"$work/systemd/jobsd.service"
    if ! grep -q "^ExecStart=$jobsd serve\$" "$work/systemd/jobsd.service"; then
        fail "$unit: ExecStart is not '/usr/local/bin/jobsd serve'"
    elif ! systemd-analyze verify "$work/systemd/jobsd.service" >"$work/verify.log" 2>&1 ||
        grep -q 'jobsd\.service' "$work/verify.log"; then
        cat "$work/verify.log" >&2
        fail "systemd-analyze verify $unit"
    elif ! systemd-analyze security --offline=yes --threshold=20 "$work/systemd/jobsd.service" \
        >"$work/security.log" 2>&1; then
        grep -E '^(✗|→)' "$work/security.log" >&2 || cat "$work/security.log" >&2
        fail "$unit: sandboxing exposure above 2.0 (systemd-analyze security --offline=yes)"
    else
        done_checks+=("systemd unit")
    fi
else
    skip "systemd-analyze verify $unit (systemd-analyze is not installed)"
fi

# ------------------------------------------------------------------ 6. docker compose
compose=()
if command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null; then
    compose=(docker-compose)
fi
if [ ${#compose[@]} -gt 0 ]; then
    mkdir -p "$work/compose"
    # Dummy values for the two required variables; an empty .env directory so no real .env
    # is read.
    if ! POSTGRES_PASSWORD=check INTERNAL_JOBS_KEY=check-deploy-0123456789abcdef0123456789 \
        "${compose[@]}" --project-directory "$work/compose" -f "$(pwd)/docker-compose.yml" \
        --profile demo config -q >"$work/compose.log" 2>&1; then
        cat "$work/compose.log" >&2
        fail "docker-compose.yml does not validate (${compose[*]} config)"
    else
        done_checks+=("compose")
    fi
else
    skip "docker compose config (neither docker compose nor docker-compose is installed)"
fi

if [ "$failures" -gt 0 ]; then
    echo "check-deploy: $failures check(s) failed" >&2
    exit 1
fi
echo "check-deploy: ok (${done_checks[*]})"
