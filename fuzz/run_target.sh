#!/usr/bin/env bash
# Runs one fuzz target the way ctest's fuzz.<target> tests do: on a temporary copy of its seed
# corpus (the seeds in the repository are only read), crashes written under ARTIFACT_DIR.
# Usage: fuzz/run_target.sh TARGET SEED_DIR ARTIFACT_DIR [libFuzzer flags...]
set -euo pipefail
target=$1 seeds=$2 artifacts=$3
shift 3
work=$(mktemp -d "${TMPDIR:-/tmp}/mqttspec-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -R "$seeds"/. "$work/"
mkdir -p "$artifacts"
"$target" -artifact_prefix="$artifacts" "$@" "$work"
