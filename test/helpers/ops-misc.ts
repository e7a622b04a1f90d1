// Typed view of the opsMisc test binding (attention, norms, activations) and numeric helpers.
import { loadDevBinding } from '../../lib/native/load.js';

export type KernelIsa = 'avx512' | 'avx2' | 'neon' | 'generic';

export interface Common {
  threads?: number;
  reference?: boolean;
  isa?: KernelIsa;
}
export interface AttentionShape {
  batch: number;
  heads: number;
  nq: number;
  nk: number;
  headDim: number;
}
export interface AttentionArgs extends AttentionShape, Common {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  qOffset?: number;
  kOffset?: number;
  vOffset?: number;
  qRow?: number;
  kRow?: number;
  vRow?: number;
  qBatch?: number;
  kBatch?: number;
  vBatch?: number;
  scale: number;
  probs?: boolean;
  kTile?: number;
}
export interface OpsMisc {
  attention(a: AttentionArgs): { out: Float32Array; probs?: Float32Array };
  attentionScratchBytes(
    a: AttentionShape & { probs?: boolean; kTile?: number; threads?: number; isa?: KernelIsa },
  ): number;
  groupNorm(
    a: {
      x: Float32Array;
      B: number;
      C: number;
      HW: number;
      groups: number;
      gamma?: Float32Array;
      beta?: Float32Array;
      eps: number;
      silu?: boolean;
      inPlace?: boolean;
    } & Common,
  ): Float32Array;
  layerNorm(
    a: {
      x: Float32Array;
      M: number;
      C: number;
      gamma?: Float32Array;
      beta?: Float32Array;
      eps: number;
      inPlace?: boolean;
    } & Common,
  ): Float32Array;
  activation(a: { op: 'silu' | 'gelu' | 'quick_gelu'; x: Float32Array } & Common): Float32Array;
  geglu(a: { x: Float32Array; M: number; N: number } & Common): Float32Array;
  add(a: { a: Float32Array; b: Float32Array } & Common): Float32Array;
  upsampleNearest2x(a: { x: Float32Array; BC: number; H: number; W: number } & Common): Float32Array;
  softmaxRows(a: { x: Float32Array; rows: number; cols: number } & Common): Float32Array;
  kernelIsas(): { best: KernelIsa; available: KernelIsa[] };
}

export const opsMisc: OpsMisc = loadDevBinding<{ opsMisc: OpsMisc }>().opsMisc;

/** Deterministic uniform values in [-scale, scale) (mulberry32). */
export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return m;
}

/** max |a - b| / (|b| + floor) */
export function maxRelDiff(a: Float32Array, b: Float32Array, floor: number): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]) / (Math.abs(b[i]) + floor);
    if (!(d <= m)) m = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return m;
}
