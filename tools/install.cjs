// The package's `install` script. Nothing to do when a binary for this machine is at hand: an
// earlier local build, the platform package npm installed as an optional dependency
// (@native-diffusion/<platform>), or a prebuild bundled in prebuilds/<platform>/. Otherwise it
// builds from source once with node-gyp (npm puts its own node-gyp on PATH for install scripts);
// `npm rebuild native-diffusion --build-from-source` forces that. Without node-addon-api (a
// development dependency, absent from users' installs) it cannot build: it says what to install
// and exits 0, so the rest of the user's install completes and loading reports the same advice.
'use strict';
const { spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const binary = 'native_diffusion.node';
const key = `${process.platform}-${process.arch}`;
const fromSource = ['true', '1', ''].includes(String(process.env.npm_config_build_from_source ?? 'false'));

function loads(file) {
  try {
    require(file);
    return true;
  } catch (err) {
    console.warn(`native-diffusion: ${file} does not load here: ${String(err.message).split('\n')[0]}`);
    return false;
  }
}

function prebuilt() {
  const found = [path.join(root, 'build', 'Release', binary)];
  try {
    found.push(require.resolve(`@native-diffusion/${key}/${binary}`, { paths: [root] }));
  } catch {
    // not installed: optional dependency for another platform, or skipped
  }
  found.push(path.join(root, 'prebuilds', key, binary));
  return found.find((f) => existsSync(f) && loads(f));
}

if (!fromSource) {
  const f = prebuilt();
  if (f) {
    console.log(`native-diffusion: using ${path.relative(root, f) || f}`);
    process.exit(0);
  }
}

let canBuild = true;
try {
  require.resolve('node-addon-api', { paths: [root] });
} catch {
  canBuild = false;
}
if (!canBuild || !existsSync(path.join(root, 'binding.gyp'))) {
  console.warn(
    `native-diffusion: no prebuilt binary for ${key} is installed and it cannot be built here (node-addon-api is missing).\n` +
      `  Prebuilt: npm install @native-diffusion/${key}  (linux-x64, linux-arm64 and win32-x64 exist)\n` +
      '  From source (C++17 compiler, Python 3, make): npm install --save-dev node-addon-api node-gyp && npm rebuild native-diffusion --build-from-source',
  );
  process.exit(0);
}
console.log(`native-diffusion: building the addon from source for ${key} (node-gyp)`);
const r = spawnSync('node-gyp', ['rebuild', '-j', 'max'], {
  cwd: root,
  stdio: 'inherit',
  shell: process.platform === 'win32',
});
if (r.error) console.error(`native-diffusion: could not run node-gyp: ${r.error.message}`);
process.exit(r.status ?? 1);
