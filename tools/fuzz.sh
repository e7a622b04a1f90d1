#!/usr/bin/env bash
# Builds the libFuzzer target for SafetensorsFile::parse (clang, ASan + UBSan) into build-native/
# and runs it for a bounded time on a seed corpus made from the fixtures. Fails on any crash,
# sanitizer report, leak or timeout; prints executions per second.
# Usage: tools/fuzz.sh [seconds=60]
set -euo pipefail
seconds="${1:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build-native"
jobs="$(nproc 2>/dev/null || echo 2)"

for tool in clang clang++ cmake node; do
  command -v "$tool" >/dev/null || { echo "fuzz.sh: $tool not found (apt-get install -y clang cmake)" >&2; exit 1; }
done

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DND_BUILD_FUZZ=ON >"$build.configure.log" 2>&1 ||
  { cat "$build.configure.log" >&2; exit 1; }
cmake --build "$build" --target safetensors_fuzz -j "$jobs"

seeds="$build/fuzz-seeds"
corpus="$build/fuzz-corpus/safetensors"
artifacts="$build/fuzz-artifacts/"
rm -rf "$seeds"
mkdir -p "$corpus" "$artifacts"
node "$root/tools/fuzz-seeds.cjs" "$seeds"

log="$build/fuzz.log"
set +e
"$build/safetensors_fuzz" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$artifacts" "$corpus" "$seeds" >"$log" 2>&1
rc=$?
set -e
grep -E '^(INFO: seed corpus|#[0-9]+ +(INITED|DONE))|^stat::' "$log" || true
runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")"
if [ "$rc" -ne 0 ]; then
  tail -60 "$log" >&2
  echo "fuzz: FAILED (exit $rc) after ${runs:-?} executions; reproducer in $artifacts" >&2
  exit 1
fi
echo "fuzz: safetensors_fuzz ran ${runs:-?} executions in ${seconds}s (${rate:-?} exec/s), no crash"
