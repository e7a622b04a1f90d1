#!/usr/bin/env node
// Cross-compiles the addon for linux-arm64 (Debian's g++-aarch64-linux-gnu) or win32-x64 (mingw-w64,
// posix threads) on an x86-64 Linux machine, without node-gyp: node-gyp would need the target's
// Node headers and a second build/ folder. N-API needs only node-api-headers, so the flags below
// mirror binding.gyp's and the sources are tools/sources.cjs's list.
//
//   node tools/cross-build.mjs <linux-arm64|win32-x64> [--jobs N]
//   → build-<target>/Release/native_diffusion.node (objects in build-<target>/obj, rebuilt when a
//     source, one of its headers or the flags changed), and native_diffusion_dev.devnode (the test
//     and bench bindings) when the tree has native/dev
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));

export const crossTargets = {
  'linux-arm64': {
    cxx: 'aarch64-linux-gnu-g++',
    apt: 'g++-aarch64-linux-gnu',
    cflags: ['-fPIC', '-pthread'],
    // libstdc++ linked in, as binding.gyp does on Linux: the binary then needs glibc >= 2.34 only
    // (native/core/glibc_compat.cc). libgcc stays dynamic: static, its unwinder imports glibc 2.35.
    ldflags: ['-shared', '-pthread', '-static-libstdc++', '-s'],
  },
  'win32-x64': {
    cxx: 'x86_64-w64-mingw32-g++-posix', // the win32 thread model has no std::mutex / std::thread
    apt: 'g++-mingw-w64-x86-64-posix',
    // GCC keeps the Win64 stack 16-byte aligned but spills AVX registers with aligned moves (GCC bug
    // 54412): on worker threads that faults. The assembler turns those moves into unaligned ones.
    cflags: ['-D_WIN32_WINNT=0x0A00', '-Wa,-muse-unaligned-vector-move'],
    // -static: otherwise the DLL imports libwinpthread-1.dll / libstdc++-6.dll, absent on users' machines.
    ldflags: ['-shared', '-static', '-s'],
  },
};

function commandExists(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** True when this machine has the cross compiler for target. */
export function canCrossBuild(target) {
  const t = crossTargets[target];
  return Boolean(t) && commandExists(t.cxx) && (target !== 'win32-x64' || commandExists('x86_64-w64-mingw32-dlltool'));
}

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code}`))));
  });
}

/** Whether obj is older than its source or any header its .d file lists. */
function stale(obj, dep) {
  if (!existsSync(obj) || !existsSync(dep)) return true;
  const built = statSync(obj).mtimeMs;
  const deps = readFileSync(dep, 'utf8')
    .replace(/\\\n/g, ' ')
    .split(':')
    .slice(1)
    .join(':')
    .split(/\s+/)
    .filter(Boolean);
  return deps.some((d) => !existsSync(d) || statSync(d).mtimeMs > built);
}

export async function crossBuild(target, { jobs = availableParallelism() } = {}) {
  const t = crossTargets[target];
  if (!t) throw new Error(`Expected one of ${Object.keys(crossTargets).join(', ')} for target but received ${target}`);
  if (!canCrossBuild(target)) throw new Error(`${t.cxx} not found: apt-get install ${t.apt}`);
  const headers = dirname(require.resolve('node-api-headers/package.json'));
  const addonApi = dirname(require.resolve('node-addon-api/package.json'));
  const out = join(root, `build-${target}`);
  const objDir = join(out, 'obj');
  mkdirSync(join(out, 'Release'), { recursive: true });
  const cflags = [
    ...['-std=c++17', '-O3', '-fexceptions', '-frtti', '-fno-math-errno', '-fvisibility=hidden'],
    ...[
      '-DNAPI_VERSION=8',
      '-DNODE_ADDON_API_DISABLE_DEPRECATED',
      '-DNAPI_CPP_EXCEPTIONS',
      '-DBUILDING_NODE_EXTENSION',
    ],
    ...[`-I${join(headers, 'include')}`, `-I${addonApi}`, `-I${join(root, 'native')}`],
    ...t.cflags,
  ];
  const list = (which) =>
    spawnSync(process.execPath, [join(root, 'tools', 'sources.cjs'), which, '--lines'], { cwd: root, encoding: 'utf8' })
      .stdout.split('\n')
      .filter(Boolean);
  const sources = list('all');
  // With a development addon (native/dev: the test and bench bindings, kept out of the shipped one),
  // it is built too, as native_diffusion_dev.devnode from the engine plus its own sources.
  const devSources = existsSync(join(root, 'native', 'dev')) ? [...list('lib'), ...list('dev')] : [];
  for (const s of devSources) if (!sources.includes(s)) sources.push(s);
  const objects = sources.map((s) => join(objDir, `${s.replace(/[/\\]/g, '_')}.o`));
  mkdirSync(objDir, { recursive: true });
  // New flags (this file changed) rebuild everything: the .d files track headers, not flags.
  const flagsFile = join(objDir, 'flags.txt');
  const flagsText = `${t.cxx} ${cflags.join(' ')}`;
  const sameFlags = existsSync(flagsFile) && readFileSync(flagsFile, 'utf8') === flagsText;
  const todo = sources
    .map((s, i) => [s, objects[i]])
    .filter(([, o]) => !sameFlags || stale(o, o.replace(/\.o$/, '.d')));
  console.log(`cross-build ${target}: ${todo.length} of ${sources.length} sources to compile (${jobs} jobs)`);
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const [src, obj] = todo[next++];
      console.log(`  CXX ${src}`);
      await run(t.cxx, [...cflags, '-MMD', '-MF', obj.replace(/\.o$/, '.d'), '-c', join(root, src), '-o', obj]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, jobs) }, worker));
  writeFileSync(flagsFile, flagsText);
  const libs = [];
  if (target === 'win32-x64') {
    // Import library for the N-API symbols node.exe exports (the addon then loads into node.exe only).
    const lib = join(out, 'node.lib');
    await run('x86_64-w64-mingw32-dlltool', ['-d', join(headers, 'def', 'node_api.def'), '-l', lib, '-D', 'node.exe']);
    libs.push(lib);
  }
  const objectOf = (s) => objects[sources.indexOf(s)];
  const shipped = list('all').map(objectOf);
  const binary = join(out, 'Release', 'native_diffusion.node');
  await run(t.cxx, [...shipped, ...libs, ...t.ldflags, '-o', binary]);
  console.log(`cross-build ${target}: ${binary}`);
  if (devSources.length) {
    const dev = join(out, 'Release', 'native_diffusion_dev.devnode');
    await run(t.cxx, [...new Set(devSources)].map(objectOf).concat(libs, t.ldflags, ['-o', dev]));
    console.log(`cross-build ${target}: ${dev}`);
  }
  return binary;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const target = process.argv[2];
  const j = process.argv.indexOf('--jobs');
  crossBuild(target, j > 0 ? { jobs: Number(process.argv[j + 1]) } : {}).catch((err) => {
    console.error(err.message);
    process.exit(1);
  });
}
