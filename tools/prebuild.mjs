#!/usr/bin/env node
// Writes prebuilds/<platform>/native_diffusion.node for each target: the host platform with
// node-gyp (incremental when build/ is configured), others with tools/cross-build.mjs. The
// `prepack` script runs it for the host only (--clean drops other platforms' leftovers), so a
// plain `npm pack` tarball installs on this platform without a compiler.
//
//   node tools/prebuild.mjs [--clean] [target ...]     (default target: this machine's)
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crossBuild } from './cross-build.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
export const hostTarget = `${process.platform}-${process.arch}`;

/** npm's configuration as the environment npm gives scripts (nodedir, for a machine without network headers). */
function npmConfigEnv() {
  if (process.env.npm_config_nodedir !== undefined) return process.env;
  const r = spawnSync('npm', ['config', 'get', 'nodedir'], { encoding: 'utf8', shell: process.platform === 'win32' });
  const nodedir = r.status === 0 ? r.stdout.trim() : '';
  return nodedir && nodedir !== 'undefined' ? { ...process.env, npm_config_nodedir: nodedir } : process.env;
}

function hostBuild() {
  const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js');
  const env = npmConfigEnv();
  // configure + build: make recompiles only what changed (gyp's makefiles also track flag changes).
  for (const args of [['configure'], ['build', '-j', 'max']]) {
    const r = spawnSync(process.execPath, [nodeGyp, ...args], { cwd: root, stdio: 'inherit', env });
    if (r.status !== 0) throw new Error(`node-gyp ${args[0]} exited with ${r.status}`);
  }
  return join(root, 'build', 'Release', 'native_diffusion.node');
}

/** Builds each target and copies its binary to prebuilds/<target>/. Returns target → path. */
export async function prebuild(targets, { clean = false } = {}) {
  const dir = join(root, 'prebuilds');
  if (clean && existsSync(dir))
    for (const d of readdirSync(dir)) if (!targets.includes(d)) rmSync(join(dir, d), { recursive: true, force: true });
  const out = {};
  for (const target of targets) {
    const built = target === hostTarget ? hostBuild() : await crossBuild(target);
    const dest = join(dir, target, 'native_diffusion.node');
    mkdirSync(dirname(dest), { recursive: true });
    copyFileSync(built, dest);
    // The host build keeps its symbols for debugging in build/; the shipped copy does not need them.
    if (target === hostTarget && process.platform === 'linux')
      spawnSync('strip', ['--strip-unneeded', dest], { stdio: 'inherit' });
    out[target] = dest;
    console.log(`prebuild ${target}: ${dest}`);
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const targets = args.filter((a) => !a.startsWith('--'));
  prebuild(targets.length ? targets : [hostTarget], { clean: args.includes('--clean') }).catch((err) => {
    console.error(err.message);
    process.exit(1);
  });
}
