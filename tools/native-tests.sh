#!/usr/bin/env bash
# Builds the native test executables (native/tests/*_test.cc) with AddressSanitizer and
# UndefinedBehaviorSanitizer into build-native/ and runs them through ctest.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build-native"
cxx="${CXX:-$(command -v clang++ || command -v g++)}"
cc="${CC:-$(command -v clang || command -v gcc)}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
  -DND_BUILD_NATIVE_TESTS=ON >"$build.tests-configure.log" 2>&1 || { cat "$build.tests-configure.log" >&2; exit 1; }
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)"
cd "$build"
ctest --output-on-failure
