#!/usr/bin/env bash
# Copies INTERNAL_JOBS_KEY from its Secrets Manager secret into the EventBridge connection that
# sends it as X-Internal-Key. Terraform creates the connection with a placeholder and never
# manages its value (the key must not enter the Terraform state: modules/jobsd-scheduler), so
# this runs at the first deployment and at every key rotation (docs/operations.md, section 4).
#
#   deploy/terraform/sync-connection-key.sh [--secret-id ID] [--connection NAME] [--region R]
#
# Defaults: --secret-id prod/INTERNAL_JOBS_KEY, --connection jobsd-internal-jobs, --region
# $AWS_REGION or $AWS_DEFAULT_REGION. Needs the AWS CLI and, for the caller:
# secretsmanager:GetSecretValue on the key's secret, events:UpdateConnection and
# events:DescribeConnection on the connection, and the Secrets Manager permissions EventBridge
# uses on the caller's behalf for the connection's own secret (CreateSecret, PutSecretValue,
# UpdateSecret, DescribeSecret on `events!connection/*`: the EventBridge User Guide's
# connection permissions).
#
# The key never appears on a command line or in the environment: the CLI writes it to a file
# of mode 600 in a private temporary directory, and update-connection reads its parameters from
# a file there (file://), removed on exit. Exit 0 when the connection is AUTHORIZED with the
# key, 1 on failure, 2 on a usage error.
set -euo pipefail

secret_id=prod/INTERNAL_JOBS_KEY
connection=jobsd-internal-jobs
region=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}
while [ $# -gt 0 ]; do
    case $1 in
    --secret-id) secret_id=${2:?--secret-id needs a value}; shift 2 ;;
    --connection) connection=${2:?--connection needs a value}; shift 2 ;;
    --region) region=${2:?--region needs a value}; shift 2 ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "sync-connection-key: unknown argument $1 (--help)" >&2; exit 2 ;;
    esac
done
if [ -z "$region" ]; then
    echo "sync-connection-key: no region (--region, AWS_REGION or AWS_DEFAULT_REGION)" >&2
    exit 2
fi
command -v aws >/dev/null || { echo "sync-connection-key: the AWS CLI (aws) is not installed" >&2; exit 1; }

umask 077
work=$(mktemp -d "${TMPDIR:-/tmp}/sync-connection-key.XXXXXX")
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    if command -v shred >/dev/null; then
        find "$work" -type f -exec shred -u {} + 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

aws secretsmanager get-secret-value --secret-id "$secret_id" --region "$region" \
    --query SecretString --output text >"$work/key"
# --output text ends the value with one newline; anything before it is the key, byte for byte
# (a newline put with the key is part of what jobsd compares, and is refused below).
key=$(cat "$work/key" && printf x)
key=${key%x}
key=${key%$'\n'}
if [ ${#key} -lt 32 ] || [ ${#key} -gt 512 ]; then
    echo "sync-connection-key: the secret $secret_id holds ${#key} bytes: jobsd needs at least 32, EventBridge takes at most 512" >&2
    exit 1
fi
if [[ $key =~ [[:cntrl:]] ]]; then
    printf '%s\n' "sync-connection-key: the secret $secret_id holds a control character (a newline put with the key?): put it again from a file written with tr -d '\\n'" >&2
    exit 1
fi
escaped=${key//\\/\\\\}
escaped=${escaped//\"/\\\"}
printf '{"ApiKeyAuthParameters": {"ApiKeyName": "X-Internal-Key", "ApiKeyValue": "%s"}}\n' \
    "$escaped" >"$work/auth.json"
unset key escaped

aws events update-connection --name "$connection" --region "$region" \
    --authorization-type API_KEY --auth-parameters "file://$work/auth.json" >/dev/null

# The connection is AUTHORIZING for a moment, then AUTHORIZED (or DEAUTHORIZED with a reason).
state=""
for _ in $(seq 1 30); do
    state=$(aws events describe-connection --name "$connection" --region "$region" \
        --query ConnectionState --output text)
    case $state in
    AUTHORIZED) echo "sync-connection-key: $connection now sends the key of $secret_id ($state)"; exit 0 ;;
    DEAUTHORIZED | FAILED_CONNECTIVITY) break ;;
    esac
    sleep 2
done
reason=$(aws events describe-connection --name "$connection" --region "$region" \
    --query StateReason --output text 2>/dev/null || true)
echo "sync-connection-key: $connection is $state${reason:+: $reason}" >&2
exit 1
