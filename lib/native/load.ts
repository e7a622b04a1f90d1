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

let cached: unknown;

/**
 * Loads the addon once: a CUDA build (build-cuda/) when ND_DEVICE is not 'cpu' and one exists,
 * else node-gyp-build's choice (prebuilds/ or build/Release). One error lists what was tried.
 */
export function loadBinding<T>(): T {
  if (cached) return cached as T;
  const tried: string[] = [];
  const cudaPath = join(packageRoot, 'build-cuda', 'Release', 'native_diffusion.node');
  if (process.env.ND_DEVICE !== 'cpu' && existsSync(cudaPath)) {
    try {
      cached = require(cudaPath);
      return cached as T;
    } catch (err) {
      tried.push(`${cudaPath}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  try {
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
    cached = nodeGypBuild(packageRoot);
    return cached as T;
  } catch (err) {
    tried.push(
      `prebuilds/${process.platform}-${process.arch} and build/Release: ${(err as Error).message.split('\n')[0]}`,
    );
  }
  throw new DiffusionError(
    'ERR_NATIVE_LOAD',
    `No native-diffusion binary could be loaded for ${process.platform}-${process.arch} (Node ${process.versions.node}, N-API ${process.versions.napi}). Tried:\n  ${tried.join('\n  ')}\nFix: reinstall with a C++17 compiler, Python 3 and make available (npm rebuild native-diffusion), or use a platform with prebuilt binaries (linux-x64).`,
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
