#!/usr/bin/env bash
# Builds the four fuzz targets with clang (-DMQTTSPEC_FUZZ=ON: libFuzzer, ASan, UBSan) and runs
# each for SECONDS through ctest (label fuzz, two at a time); fuzz/README.md says more.
# Usage: fuzz/run.sh [SECONDS] [BUILD_DIR]
#   SECONDS    per target (default: $MQTTSPEC_FUZZ_SECONDS, else 60)
#   BUILD_DIR  default build-fuzz; JOBS (default 2) compile jobs
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-${MQTTSPEC_FUZZ_SECONDS:-60}}"
build_dir="${2:-build-fuzz}"
targets=(fuzz_request fuzz_sql_builder fuzz_matcher fuzz_config)

CC=clang CXX=clang++ cmake -S . -B "$build_dir" -DMQTTSPEC_FUZZ=ON \
  -DMQTTSPEC_FUZZ_SECONDS="$seconds" >/dev/null
cmake --build "$build_dir" --target "${targets[@]}" -j"${JOBS:-2}"
cd "$build_dir"
if ! ctest -L fuzz -j2 --output-on-failure; then
  echo "fuzz: a target failed; its input is in $build_dir/fuzz/artifacts/<target>/" >&2
  exit 1
fi
