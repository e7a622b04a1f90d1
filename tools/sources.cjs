// The one native source list, read by binding.gyp (node-gyp) and CMakeLists.txt (cmake-js).
//   lib    the engine: every .cc under native/ outside the groups below (core, backend, cpu, nn, models)
//   addon  the shipped N-API bindings (native/addon)
//   dev    the test and bench bindings (native/dev) plus the addon plumbing they share (module, convert)
//   all    lib + addon: the shipped addon in one list (CMake)
//   core   = lib (CMake's native executables filter it further)
// Never listed: the CUDA backend (native/backend/cuda, added by CMake when nvcc exists) and the native
// test/fuzz/bench executables.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const root = path.join(__dirname, '..');
const skip = new Set(['cuda', 'tests', 'fuzz', 'bench']);
function walk(dir, out) {
  for (const e of fs
    .readdirSync(path.join(root, dir), { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) {
      if (!skip.has(e.name)) walk(rel, out);
    } else if (e.name.endsWith('.cc')) out.push(rel);
  }
  return out;
}
const every = walk('native', []);
const under = (dir) => (f) => f.startsWith(`native/${dir}/`);
// glibc_compat.cc goes into each linked addon, not the static engine library: the linker reads that
// archive before the static libstdc++ whose arc4random reference it must resolve, so there it would be skipped.
const glibcCompat = 'native/core/glibc_compat.cc';
const lib = every.filter((f) => !under('addon')(f) && !under('dev')(f) && f !== glibcCompat);
const addon = [...every.filter(under('addon')), glibcCompat];
const dev = [...every.filter(under('dev')), 'native/addon/module.cc', 'native/addon/convert.cc', glibcCompat];
const lists = { lib, addon, dev, all: [...lib, ...addon], core: lib };
const which = process.argv[2] || 'all';
if (!lists[which]) {
  process.stderr.write(`Expected one of ${Object.keys(lists).join(', ')} but received ${which}\n`);
  process.exit(1);
}
process.stdout.write(lists[which].join(process.argv.includes('--lines') ? '\n' : ' '));
