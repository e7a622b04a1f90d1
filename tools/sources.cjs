// The one native source list, read by binding.gyp (node-gyp) and CMakeLists.txt (cmake-js).
// Every .cc under native/ except the CUDA backend, native test/fuzz/bench executables.
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
const which = process.argv[2] || 'all';
let files = walk('native', []);
if (which === 'core') files = files.filter((f) => !f.startsWith('native/addon/'));
process.stdout.write(files.join(process.argv.includes('--lines') ? '\n' : ' '));
