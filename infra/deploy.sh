#!/usr/bin/env bash
# Deploy a packaged stage (run infra/package.sh first, or `make deploy STAGE=...` which does both):
#   aws cloudformation package  (uploads deployment.zip to S3)  ->  $OUT_DIR/packaged.yaml
#   aws cloudformation deploy   (creates or updates the stack; CloudFormation rolls back on failure)
#   prints the WebSocket and HTTP URLs.
# Usage: infra/deploy.sh [STAGE]
# Environment:
#   ANTHROPIC_API_KEY_SECRET_ARN  full ARN of the Secrets Manager secret holding the Anthropic key;
#                                 required on the first deploy with the anthropic provider, later
#                                 deploys keep the stack's value
#   MODEL_PROVIDER                anthropic (the template's default) or bedrock: who serves Claude
#                                 (docs/models.md); unset keeps the stack's value
#   BEDROCK_SCOPE                 with bedrock: global (default), us, eu, or "" for the regional
#                                 model id; unset keeps the stack's value
#   ALARM_TOPIC_ARN               optional existing SNS topic every alarm notifies; unset keeps the
#                                 stack's value, empty (the first deploy's default) uses the topic
#                                 the stack creates (infra/observability.yaml)
#   ALARM_EMAIL                   optional e-mail address subscribed to the alarm topic (SNS mails
#                                 a confirmation link first)
#   JWT_JWKS_URL, JWT_ISSUER, JWT_AUDIENCE
#                                 optional identity provider for bearer tokens (RS256 via JWKS);
#                                 unset keeps the stack's value, empty switches back to the
#                                 generated HS256 secret
#   STACK_NAME                    default cache-warming-<stage>
#   ARTIFACT_BUCKET               S3 bucket for the code; default cache-warming-artifacts-<account>-<region>
#                                 (created, private and encrypted by default, if it does not exist)
#   AWS_REGION / AWS_PROFILE      as for the AWS CLI
#   OUT_DIR                       the package directory, default build/<stage>
#   AWS_CLI                       the aws executable, default aws
#   WARM_RESERVED_CONCURRENCY     the Warm function's reserved concurrency, default 300
#   GENERATE_RESERVED_CONCURRENCY the Generate function's reserved concurrency, default 100
#   CHANGESET_ONLY=1              create the change set and stop (review it, then execute it with
#                                 aws cloudformation execute-change-set)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STAGE="${1:-${STAGE:-dev}}"
STACK_NAME="${STACK_NAME:-cache-warming-$STAGE}"
OUT_DIR="${OUT_DIR:-$ROOT/build/$STAGE}"
AWS="${AWS_CLI:-aws}"
TEMPLATE="$OUT_DIR/sam.yaml"
PACKAGED="$OUT_DIR/packaged.yaml"

if [[ ! -s "$TEMPLATE" ]]; then
    echo "error: $TEMPLATE not found; run 'make package STAGE=$STAGE' first" >&2
    exit 1
fi
if [[ ! "$STACK_NAME" =~ ^[a-zA-Z][-a-zA-Z0-9]{0,39}$ ]]; then
    # Function names are "<stack>-ws-disconnect" (64 characters at most) and the schedule group is
    # named after the stack.
    echo "error: STACK_NAME must be letters, digits and '-', at most 40 characters" >&2
    exit 1
fi

REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-$("$AWS" configure get region || true)}}"
if [[ -z "$REGION" ]]; then
    echo "error: no AWS region; set AWS_REGION" >&2
    exit 1
fi
export AWS_REGION="$REGION" AWS_DEFAULT_REGION="$REGION"

if [[ -z "${ARTIFACT_BUCKET:-}" ]]; then
    ACCOUNT="$("$AWS" sts get-caller-identity --query Account --output text)"
    ARTIFACT_BUCKET="cache-warming-artifacts-$ACCOUNT-$REGION"
    if ! "$AWS" s3api head-bucket --bucket "$ARTIFACT_BUCKET" >/dev/null 2>&1; then
        echo "==> creating artifact bucket s3://$ARTIFACT_BUCKET"
        "$AWS" s3 mb "s3://$ARTIFACT_BUCKET" --region "$REGION"
        "$AWS" s3api put-public-access-block --bucket "$ARTIFACT_BUCKET" \
            --public-access-block-configuration \
            BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
    fi
fi

WARM_RESERVED="${WARM_RESERVED_CONCURRENCY:-300}"
GENERATE_RESERVED="${GENERATE_RESERVED_CONCURRENCY:-100}"
for value in "$WARM_RESERVED" "$GENERATE_RESERVED"; do
    [[ "$value" =~ ^[0-9]+$ ]] || { echo "error: reserved concurrency must be a whole number, not '$value'" >&2; exit 1; }
done

# Lambda refuses a reservation that leaves fewer than 100 executions unreserved in the account
# (Lambda API reference, PutFunctionConcurrency: "as long as you leave at least 100 simultaneous
# executions unreserved", read 2026-12-07); CloudFormation would then roll the whole create back.
# What this stack's functions already reserve comes back to the pool when they are updated.
reserved_now() {
    "$AWS" lambda get-function-concurrency --function-name "$1" \
        --query ReservedConcurrentExecutions --output text 2>/dev/null | grep -E '^[0-9]+$' || echo 0
}
check_concurrency_quota() {
    local settings quota unreserved mine want left
    if ! settings="$("$AWS" lambda get-account-settings \
        --query '[AccountLimit.ConcurrentExecutions, AccountLimit.UnreservedConcurrentExecutions]' \
        --output text)"; then
        echo "error: cannot read the account's Lambda concurrency quota (lambda:GetAccountSettings)" >&2
        exit 1
    fi
    read -r quota unreserved <<<"$settings"
    mine=$(( $(reserved_now "$STACK_NAME-warm") + $(reserved_now "$STACK_NAME-generate") ))
    want=$(( WARM_RESERVED + GENERATE_RESERVED ))
    left=$(( unreserved + mine - want ))
    if (( left < 100 )); then
        echo "error: $STACK_NAME reserves $want concurrent executions (Warm $WARM_RESERVED, Generate" \
            "$GENERATE_RESERVED) but the account's Lambda quota in $REGION is $quota with $unreserved" \
            "unreserved ($mine of them this stack's): Lambda keeps 100 unreserved, so this deploy would" \
            "roll back. Lower WARM_RESERVED_CONCURRENCY / GENERATE_RESERVED_CONCURRENCY or raise the" \
            "quota (Service Quotas, 'Concurrent executions'); docs/operations.md, 'Concurrency'." >&2
        exit 1
    fi
    echo "==> concurrency: reserving $want of $quota ($left left unreserved)"
}
check_concurrency_quota

stack_exists() {
    "$AWS" cloudformation describe-stacks --stack-name "$STACK_NAME" >/dev/null 2>&1
}

PARAMS=("WarmReservedConcurrency=$WARM_RESERVED" "GenerateReservedConcurrency=$GENERATE_RESERVED")
if [[ -n "${MODEL_PROVIDER+set}" ]]; then
    [[ "$MODEL_PROVIDER" =~ ^(anthropic|bedrock)$ ]] || {
        echo "error: MODEL_PROVIDER must be anthropic or bedrock, not '$MODEL_PROVIDER'" >&2; exit 1; }
    PARAMS+=("ModelProvider=$MODEL_PROVIDER")
fi
[[ -n "${BEDROCK_SCOPE+set}" ]] && PARAMS+=("BedrockScope=$BEDROCK_SCOPE")
if [[ -n "${ANTHROPIC_API_KEY_SECRET_ARN:-}" ]]; then
    PARAMS+=("AnthropicApiKeySecretArn=$ANTHROPIC_API_KEY_SECRET_ARN")
elif [[ "${MODEL_PROVIDER:-}" != bedrock ]] && ! stack_exists; then
    # Bedrock needs no key: the functions' roles sign the calls (template rule
    # AnthropicProviderNamesItsKey refuses an anthropic stack without one).
    echo "error: first deploy of $STACK_NAME: set ANTHROPIC_API_KEY_SECRET_ARN, or MODEL_PROVIDER=bedrock" \
        "(docs/operations.md)" >&2
    exit 1
fi
# Optional parameters: passed when the variable is set (even to ""), otherwise the stack keeps its
# current value.
[[ -n "${ALARM_TOPIC_ARN+set}" ]] && PARAMS+=("AlarmTopicArn=$ALARM_TOPIC_ARN")
[[ -n "${ALARM_EMAIL+set}" ]] && PARAMS+=("AlarmEmail=$ALARM_EMAIL")
[[ -n "${JWT_JWKS_URL+set}" ]] && PARAMS+=("JwtJwksUrl=$JWT_JWKS_URL")
[[ -n "${JWT_ISSUER+set}" ]] && PARAMS+=("JwtIssuer=$JWT_ISSUER")
[[ -n "${JWT_AUDIENCE+set}" ]] && PARAMS+=("JwtAudience=$JWT_AUDIENCE")

echo "==> aws cloudformation package -> $PACKAGED (s3://$ARTIFACT_BUCKET/$STACK_NAME)"
"$AWS" cloudformation package \
    --template-file "$TEMPLATE" \
    --s3-bucket "$ARTIFACT_BUCKET" \
    --s3-prefix "$STACK_NAME" \
    --output-template-file "$PACKAGED"

# Keep every deployed template: a rollback is a redeploy of an earlier one (docs/operations.md).
RELEASES="$(dirname "$OUT_DIR")/releases/$STACK_NAME"
mkdir -p "$RELEASES"
REVISION="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
cp "$PACKAGED" "$RELEASES/$(date -u +%Y%m%dT%H%M%SZ)-$REVISION.yaml"

echo "==> aws cloudformation deploy --stack-name $STACK_NAME"
"$AWS" cloudformation deploy \
    --template-file "$PACKAGED" \
    --stack-name "$STACK_NAME" \
    --s3-bucket "$ARTIFACT_BUCKET" \
    --s3-prefix "$STACK_NAME/templates" \
    --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
    --no-fail-on-empty-changeset \
    ${CHANGESET_ONLY:+--no-execute-changeset} \
    --tags "app=cache-warming" "stage=$STAGE" \
    --parameter-overrides "${PARAMS[@]}"

if [[ -n "${CHANGESET_ONLY:-}" ]]; then
    echo "==> change set created, not executed (CHANGESET_ONLY)"
    exit 0
fi

output() {
    "$AWS" cloudformation describe-stacks --stack-name "$STACK_NAME" \
        --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
echo "WebSocket URL: $(output WebsocketConnectEndpointURL)"
echo "HTTP URL:      $(output EndpointURL)"
