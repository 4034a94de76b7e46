#!/usr/bin/env bash
# Build the deployable CloudFormation template for one stage, offline:
#   chalice package (+ infra/template.yaml merged in)  ->  $OUT_DIR/sam.yaml + deployment.zip
#   infra/observability.yaml merged into sam.yaml (scripts/merge_fragments.py);
#   the roles' Bedrock grant from the model catalog (scripts/bedrock_iam.py);
#   bytecode for every module added to deployment.zip (scripts/precompile.py);
#   cfn-lint on the merged template.
# Usage: infra/package.sh [STAGE]        (or `make package STAGE=dev`)
# Environment (all optional):
#   STAGE        chalice stage, default dev
#   OUT_DIR      output directory, default <project>/build/<stage> (emptied first)
#   PROJECT_DIR  the Chalice project to package, default the repository root
#   BIN          directory holding chalice and cfn-lint, default <repo>/.venv/bin
#   SKIP_LINT=1  package only
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STAGE="${1:-${STAGE:-dev}}"
PROJECT_DIR="$(cd "${PROJECT_DIR:-$ROOT}" && pwd)"
OUT_DIR="${OUT_DIR:-$PROJECT_DIR/build/$STAGE}"
BIN="$(cd "${BIN:-$ROOT/.venv/bin}" && pwd)"
MERGE_TEMPLATE="$ROOT/infra/template.yaml"
# Merged after `chalice package`, in this order (scripts/merge_fragments.py).
FRAGMENTS=("$ROOT/infra/observability.yaml")

# `chalice package` insists on a region although the template only uses ${AWS::Region}.
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-${AWS_REGION:-us-east-1}}"

mkdir -p "$(dirname "$OUT_DIR")"
OUT_DIR="$(cd "$(dirname "$OUT_DIR")" && pwd)/$(basename "$OUT_DIR")"
rm -rf "$OUT_DIR"

echo "==> chalice package --stage $STAGE -> $OUT_DIR"
(cd "$PROJECT_DIR" && "$BIN/chalice" package --stage "$STAGE" \
    --merge-template "$MERGE_TEMPLATE" "$OUT_DIR")

TEMPLATE="$OUT_DIR/sam.yaml"
test -s "$TEMPLATE" || { echo "error: $TEMPLATE was not written" >&2; exit 1; }

# Merge the fragments (infra/observability.yaml: alarms, their topic, the dashboard) with
# Chalice's own deep-merge rule, refusing a fragment that would replace a definition, and expand
# the YAML aliases Chalice's writer emits (CloudFormation refuses aliases): scripts/merge_fragments.py.
(cd "$ROOT" && "$BIN/python" -m scripts.merge_fragments "$TEMPLATE" "${FRAGMENTS[@]}")

# The Bedrock grant (ModelProvider=bedrock) is written from the model catalog, never by hand.
(cd "$ROOT" && "$BIN/python" -m scripts.bedrock_iam "$TEMPLATE")

# Lambda's /var/task is read-only: ship bytecode, or every cold start compiles every import.
(cd "$ROOT" && "$BIN/python" -m scripts.precompile "$OUT_DIR/deployment.zip" "$TEMPLATE")

if [[ "${SKIP_LINT:-0}" != "1" ]]; then
    echo "==> cfn-lint $TEMPLATE"
    "$BIN/cfn-lint" -- "$TEMPLATE"
fi
echo "==> packaged: $TEMPLATE and $OUT_DIR/deployment.zip"
