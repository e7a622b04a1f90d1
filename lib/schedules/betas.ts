// The training noise table (betas, ᾱ) exactly as diffusers builds it: torch float32 arithmetic,
// reproduced bit for bit (checked against the fixtures' `betas` / `alphas_cumprod`).

import { invalid } from '../errors.js';
import type { SchedulerConfig } from '../loading/types.js';

const f32 = Math.fround;

/**
 * torch.linspace(start, end, steps, dtype=float32) on CPU (torch 1.13, AVX2 build): the step is a float32
 * division; values before the halfway point count up from `start`, the rest down from `end`; the kernel writes
 * 8-wide vectors (two per loop turn) as `base + j*step` rounded once (fused), the tail element by element.
 */
export function torchLinspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 1) {
    out[0] = f32(start);
    return out;
  }
  const s = f32(start);
  const e = f32(end);
  const step = f32(f32(e - s) / (steps - 1));
  const half = Math.floor(steps / 2);
  const scalarAt = (i: number) => (i < half ? s + step * i : e - step * (steps - i - 1));
  const width = 8;
  const vectorized = Math.floor(steps / (2 * width)) * 2 * width;
  let i = 0;
  for (; i < vectorized; i += width) {
    const base = f32(scalarAt(i));
    for (let j = 0; j < width; j++) out[i + j] = f32(base + j * step);
  }
  for (; i < steps; i++) out[i] = f32(scalarAt(i));
  return out;
}

/** diffusers' betas_for_alpha_bar with the cosine ("squaredcos_cap_v2") transform: float64, then float32. */
function cosineBetas(n: number, maxBeta = 0.999): Float32Array {
  const alphaBar = (t: number) => Math.cos((((t + 0.008) / 1.008) * Math.PI) / 2) ** 2;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), maxBeta);
  return out;
}

export function makeBetas(
  config: Pick<SchedulerConfig, 'betaStart' | 'betaEnd' | 'betaSchedule' | 'numTrainTimesteps'>,
): Float32Array {
  const n = config.numTrainTimesteps;
  if (!Number.isInteger(n) || n < 2) invalid('an integer >= 2', 'numTrainTimesteps', n);
  switch (config.betaSchedule) {
    case 'linear':
      return torchLinspaceF32(config.betaStart, config.betaEnd, n);
    case 'scaled_linear':
      return torchLinspaceF32(Math.sqrt(config.betaStart), Math.sqrt(config.betaEnd), n).map((b) => f32(b * b));
    case 'squaredcos_cap_v2':
      return cosineBetas(n);
    default:
      return invalid('one of scaled_linear, linear, squaredcos_cap_v2', 'betaSchedule', config.betaSchedule);
  }
}

/** ᾱ_t = Π(1 − β): 1 − β in float32, the product accumulated in float64 (torch's CPU cumprod), stored float32. */
export function alphasCumprodFromBetas(betas: Float32Array): Float32Array {
  const out = new Float32Array(betas.length);
  let p = 1;
  for (let i = 0; i < betas.length; i++) {
    p *= f32(1 - betas[i]);
    out[i] = p;
  }
  return out;
}

export interface NoiseTable {
  betas: Float32Array;
  /** ᾱ_t, t = 0..T−1 (float32 values) */
  alphasCumprod: Float32Array;
  /** σ_t = √((1 − ᾱ_t)/ᾱ_t) in float32 like diffusers' `((1 - ac) / ac) ** 0.5` */
  sigmas: Float32Array;
  /** log σ_t rounded to float32 (numpy's log of the float32 table) */
  logSigmas: Float32Array;
}

const tableCache = new Map<string, NoiseTable>();

export function noiseTable(
  config: Pick<SchedulerConfig, 'betaStart' | 'betaEnd' | 'betaSchedule' | 'numTrainTimesteps'>,
): NoiseTable {
  const key = `${config.betaSchedule}:${config.betaStart}:${config.betaEnd}:${config.numTrainTimesteps}`;
  const hit = tableCache.get(key);
  if (hit) return hit;
  const betas = makeBetas(config);
  const alphasCumprod = alphasCumprodFromBetas(betas);
  const sigmas = alphasCumprod.map((a) => f32(Math.sqrt(f32(f32(1 - a) / a))));
  const logSigmas = sigmas.map((s) => Math.log(s));
  const table = { betas, alphasCumprod, sigmas, logSigmas };
  tableCache.set(key, table);
  return table;
}
