// Typed view of the opsGemm / bench test bindings and small numeric helpers for kernel tests.
import { loadDevBinding } from '../../lib/native/load.js';

export type WeightDType = 'F32' | 'F16' | 'BF16';
export type Isa = 'scalar' | 'avx2' | 'avx512' | 'neon';

interface Common {
  threads?: number;
  reference?: boolean;
  isa?: Isa;
}
export interface LinearArgs extends Common {
  x: Float32Array;
  M: number;
  K: number;
  w: Float32Array;
  dtype: WeightDType;
  N: number;
  bias?: Float32Array;
  y?: Float32Array;
  accumulate?: boolean;
}
export interface GemmArgs extends Common {
  transA: boolean;
  transB: boolean;
  M: number;
  N: number;
  K: number;
  alpha: number;
  A: Float32Array;
  B: Float32Array;
  beta: number;
  C?: Float32Array;
}
export interface Conv2dArgs extends Common {
  x: Float32Array;
  B: number;
  Cin: number;
  H: number;
  W: number;
  w: Float32Array;
  dtype: WeightDType;
  Cout: number;
  kh: number;
  kw: number;
  stride: number;
  pad: number;
  bias?: Float32Array;
}
export interface OpsGemm {
  linear(a: LinearArgs): Float32Array;
  gemm(a: GemmArgs): Float32Array;
  conv2d(a: Conv2dArgs): Float32Array;
  cpuFeatures(): { best: Isa; active: Isa; avx2: boolean; avx512f: boolean; f16c: boolean; fma: boolean };
}

export const opsGemm = (): OpsGemm => loadDevBinding<{ opsGemm: OpsGemm }>().opsGemm;

/** The ISA levels this CPU can run, widest first. */
export function isaLevels(): Isa[] {
  const best = opsGemm().cpuFeatures().best;
  const all: Isa[] = best === 'neon' ? ['neon', 'scalar'] : ['avx512', 'avx2', 'scalar'];
  return all.slice(all.indexOf(best));
}

/** Deterministic uniform [-1, 1) values (mulberry32). */
export function randomArray(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2147483648 - 1;
  }
  return out;
}

export function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

/** Largest |a - b| (NaN counts as infinite). */
export function maxDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return m;
}

/**
 * Tolerance for an f32 dot product of length K against the double-precision reference:
 * summation-order error grows like sqrt(K)·|x|·|w|·ε; we allow 1e-5·sqrt(K)·max|x|·max|w|
 * (about 100 ulps of the typical magnitude), far below any indexing or packing mistake (O(1)).
 */
export function dotTolerance(K: number, xMax: number, wMax: number): number {
  return 1e-5 * Math.sqrt(Math.max(K, 1)) * Math.max(xMax, 1e-3) * Math.max(wMax, 1e-3) + 1e-6;
}
