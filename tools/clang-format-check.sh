#!/usr/bin/env bash
# Checks that every native source (native/**/*.{h,cc,cu,cuh}) matches .clang-format; lists the
# files that differ and exits non-zero. With --fix, reformats them in place instead.
# Usage: tools/clang-format-check.sh [--fix] [files...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
fix=0
if [ "${1:-}" = "--fix" ]; then
  fix=1
  shift
fi
clang_format="${CLANG_FORMAT:-clang-format}"
command -v "$clang_format" >/dev/null || { echo "clang-format not found (apt-get install -y clang-format)" >&2; exit 1; }

if [ "$#" -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(find native -type f \( -name '*.h' -o -name '*.cc' -o -name '*.cu' -o -name '*.cuh' \) | sort)
fi

bad=()
for f in "${files[@]}"; do
  if [ "$fix" -eq 1 ]; then
    "$clang_format" -i --style=file "$f"
  elif ! "$clang_format" --style=file "$f" | cmp -s - "$f"; then
    bad+=("$f")
  fi
done
if [ "${#bad[@]}" -gt 0 ]; then
  echo "clang-format: ${#bad[@]} of ${#files[@]} files differ from .clang-format (fix: tools/clang-format-check.sh --fix):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
if [ "$fix" -eq 1 ]; then echo "clang-format: formatted ${#files[@]} files"; else echo "clang-format: ${#files[@]} files OK"; fi
