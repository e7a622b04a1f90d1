import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DiffusionError } from '../errors.js';

const require = createRequire(import.meta.url);
/** Package root: dist/native/load.js and lib/native/load.ts both sit two levels below it. */
export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** This package's version (package.json), read once. */
export const packageVersion: string = (
  JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }
).version;

/** The file name of the addon in build/Release, prebuilds/<platform>/ and the platform packages. */
export const binaryName = 'native_diffusion.node';

/**
 * Platforms with a prebuilt binary package (`@native-diffusion/<key>`, the way sharp ships
 * `@img/sharp-<platform>`): npm installs the one whose os/cpu/libc match as an optional dependency
 * of the main package. tools/pack-all.mjs writes these packages from this table.
 */
export const platformPackages: Record<string, { os: string; cpu: string; libc?: 'glibc' }> = {
  'linux-x64': { os: 'linux', cpu: 'x64', libc: 'glibc' },
  'linux-arm64': { os: 'linux', cpu: 'arm64', libc: 'glibc' },
  'win32-x64': { os: 'win32', cpu: 'x64' },
};

export function platformPackageName(key: string): string {
  return `@native-diffusion/${key}`;
}

/** 'glibc' or 'musl' on Linux (from the process report, as detect-libc does), else undefined. */
export function linuxLibc(): 'glibc' | 'musl' | undefined {
  if (process.platform !== 'linux') return undefined;
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime ? 'glibc' : 'musl';
}

/** This machine's platform key (`linux-x64`, ...) and whether a prebuilt package exists for it. */
export function runtimePlatform(): { key: string; libc?: string; supported: boolean } {
  const key = `${process.platform}-${process.arch}`;
  const libc = linuxLibc();
  const p = platformPackages[key];
  return { key, libc, supported: Boolean(p) && (!p.libc || p.libc === libc) };
}

let cached: unknown;

interface Candidate {
  label: string;
  /** Absolute path of the .node file, or undefined when not present (reason says why). */
  path?: string;
  missing?: string;
}

function candidates(key: string, supported: boolean): Candidate[] {
  const list: Candidate[] = [];
  const cudaPath = join(packageRoot, 'build-cuda', 'Release', binaryName);
  if (process.env.ND_DEVICE !== 'cpu' && existsSync(cudaPath))
    list.push({ label: 'build-cuda/Release', path: cudaPath });
  // A local build first: in a clone it is what the developer just compiled.
  const local = join(packageRoot, 'build', 'Release', binaryName);
  list.push(
    existsSync(local) ? { label: 'build/Release', path: local } : { label: 'build/Release', missing: 'not built' },
  );
  if (supported) {
    const name = platformPackageName(key);
    try {
      list.push({ label: name, path: require.resolve(`${name}/${binaryName}`, { paths: [packageRoot] }) });
    } catch {
      list.push({ label: name, missing: 'not installed' });
    }
  }
  const bundled = join(packageRoot, 'prebuilds', key, binaryName);
  list.push(
    existsSync(bundled)
      ? { label: `prebuilds/${key}`, path: bundled }
      : { label: `prebuilds/${key}`, missing: 'absent' },
  );
  return list;
}

/** The "possible solutions" part of the load error: exactly what to install for this machine. */
function solutions(key: string, libc: string | undefined, supported: boolean, loadFailed: boolean): string[] {
  const out: string[] = [];
  const name = platformPackageName(key);
  if (supported && !loadFailed) {
    out.push(
      `Install the prebuilt binary for ${key}: npm install ${name}@${packageVersion}\n(npm skips it with --omit=optional / --no-optional, or when the lock file was written on another platform: install again without those)`,
    );
  } else if (!supported) {
    const listed = Object.entries(platformPackages)
      .map(([k, p]) => (p.libc ? `${k} (${p.libc})` : k))
      .join(', ');
    out.push(`No prebuilt binary exists for ${key}${libc ? ` (${libc})` : ''}; prebuilt platforms: ${listed}.`);
  }
  out.push(
    'Build from source: with a C++17 compiler, Python 3 and make on PATH (Xcode command line tools on macOS, Visual Studio Build Tools on Windows):\nnpm install --save-dev node-addon-api node-gyp && npm rebuild native-diffusion --build-from-source',
  );
  return out;
}

/**
 * Loads the addon once: a CUDA build (build-cuda/) when ND_DEVICE is not 'cpu' and one exists, a
 * local build (build/Release), the platform package (@native-diffusion/<platform>), or a prebuild
 * bundled in prebuilds/<platform>/, in that order. The error lists what was tried and what to install.
 */
export function loadBinding<T>(): T {
  if (cached) return cached as T;
  const { key, libc, supported } = runtimePlatform();
  const tried: string[] = [];
  let loadFailed = false;
  for (const c of candidates(key, supported)) {
    if (!c.path) {
      tried.push(`${c.label}: ${c.missing}`);
      continue;
    }
    try {
      cached = require(c.path);
      return cached as T;
    } catch (err) {
      loadFailed = true;
      tried.push(`${c.label} (${c.path}): ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new DiffusionError(
    'ERR_NATIVE_LOAD',
    `Could not load the native-diffusion binary for ${key}${libc ? ` (${libc})` : ''}, Node ${process.versions.node}, N-API ${process.versions.napi}. Tried:\n  ${tried.join('\n  ')}\nPossible solutions:\n${solutions(
      key,
      libc,
      supported,
      loadFailed,
    )
      .map((s) => `- ${s.replace(/\n/g, '\n  ')}`)
      .join('\n')}`,
  );
}

let cachedDev: unknown;

/**
 * Loads the development addon (native/dev: the kernel/core test hooks and the bench kernels), which the
 * tests and `bench` use and the shipped binary leaves out. node-gyp builds it as
 * build/Release/native_diffusion_dev.devnode (not *.node, so prebuildify never packs it).
 */
export function loadDevBinding<T>(): T {
  if (cachedDev) return cachedDev as T;
  const path = join(packageRoot, 'build', 'Release', 'native_diffusion_dev.devnode');
  try {
    const module = { exports: {} as unknown };
    process.dlopen(module, path);
    cachedDev = module.exports;
    return cachedDev as T;
  } catch (err) {
    throw new DiffusionError(
      'ERR_NATIVE_LOAD',
      `The native-diffusion development addon (test and bench bindings) could not be loaded from ${path}: ${(err as Error).message.split('\n')[0]}\nFix: build it from a source checkout with \`npm run build:native\` (installed packages ship only the main addon).`,
    );
  }
}

export interface BuildInfo {
  hardwareThreads: number;
  cuda: boolean;
  bindings: string[];
}

export function buildInfo(): BuildInfo {
  return loadBinding<{ buildInfo(): BuildInfo }>().buildInfo();
}
