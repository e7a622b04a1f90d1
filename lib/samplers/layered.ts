// The layered sampler (DESIGN §5.2): DDIM (η = 0) in the top scale's (α, σ) over a uniform grid of the shared t
// from 1 to 0. Each step the lower-scale inputs come from the top state, z_lo = D_k(z)/sqrt(α² + σ²/k²)
// (lowerScaleState), the model's top-scale v gives x̂0 = α z − σ v (clipped to [−1, 1]) and ε̂ = σ z + α v, and
// z ← α' x̂0 + σ' ε̂. CFG combines v: v = v_u + w (v_c − v_u), cond and uncond batched in one call.
// At a size other than native the schedule keeps the native sides (the shift belongs to the scale index) and
// `entropyScaling` rescales the self-attention softmax (DESIGN §5.1). training/sample.py is the reference.
import { DiffusionError, invalid } from '../errors.js';
import type { LayeredForwardArgs, LayeredModelConfig } from '../loading/layered.js';
import { lowerScaleState } from '../noise/multiscale.js';
import { alphaSigma, type ShiftedCosineConfig, sharedTimeGrid, shiftedLogSnr } from '../schedules/shifted-cosine.js';

export interface LayeredDenoiser {
  readonly config: LayeredModelConfig;
  forward(args: LayeredForwardArgs): Promise<Float32Array[]>;
}

export interface LayeredSampleOptions {
  /** initial N(0, I) noise at the top scale, [batch, C, height, width] */
  noise: Float32Array;
  batch: number;
  height: number;
  width: number;
  steps: number;
  /** CFG scale w (1 = conditional only, one pass per step) */
  guidance: number;
  /** [batch, tokens, context_dim] */
  context: Float32Array;
  /** unconditional context: [1, tokens, D] (shared) or [batch, tokens, D]; required when guidance != 1 */
  uncondContext?: Float32Array;
  contextTokens: number;
  entropyScaling?: boolean;
  /** clamp x̂0 to [−1, 1] (default true) */
  clip?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: { step: number; steps: number }) => void;
}

export function scheduleOf(config: LayeredModelConfig): ShiftedCosineConfig {
  return {
    baseSize: config.schedule.base_size,
    logsnrMin: config.schedule.logsnr_min,
    logsnrMax: config.schedule.logsnr_max,
  };
}

/** λ = sqrt(ln N / ln T)/√d for the three self-attention layers (at s0/2, s0/4, s0/2 of the lowest scale). */
export function layeredEntropyScales(config: LayeredModelConfig, height: number, width: number): Float32Array {
  const top = config.scales[config.scales.length - 1];
  const s0 = config.scales[0];
  return Float32Array.from([2, 4, 2], (div) => {
    const n = Math.max(
      2,
      Math.floor(Math.floor((height * s0) / top) / div) * Math.floor(Math.floor((width * s0) / top) / div),
    );
    const t = Math.max(2, Math.floor(s0 / div) ** 2);
    return Math.sqrt(Math.log(n) / Math.log(t)) / Math.sqrt(config.head_dim);
  });
}

/** Runs the sampler; resolves to x̂0 at the top scale, [batch, C, height, width] in [−1, 1]. */
export async function sampleLayered(model: LayeredDenoiser, o: LayeredSampleOptions): Promise<Float32Array> {
  const cfg = model.config;
  const C = cfg.in_channels;
  const top = cfg.scales[cfg.scales.length - 1];
  const unit = (top / cfg.scales[0]) * 4;
  const { batch: B, height: H, width: W } = o;
  if (!Number.isInteger(B) || B < 1) invalid('a positive integer', 'batch', B);
  if (!Number.isInteger(H) || H < unit || H % unit) invalid(`a multiple of ${unit}`, 'height', H);
  if (!Number.isInteger(W) || W < unit || W % unit) invalid(`a multiple of ${unit}`, 'width', W);
  const per = C * H * W;
  if (o.noise.length !== B * per) invalid(`${B * per} values`, 'noise', o.noise.length);
  const D = cfg.context_dim,
    n = o.contextTokens;
  if (o.context.length !== B * n * D) invalid(`${B * n * D} values`, 'context', o.context.length);
  if (!Number.isFinite(o.guidance)) invalid('a finite number', 'guidance', o.guidance);
  const guided = o.guidance !== 1;
  let uncond: Float32Array | undefined;
  if (guided) {
    const u = o.uncondContext;
    if (!u || (u.length !== n * D && u.length !== B * n * D))
      invalid(`${n * D} or ${B * n * D} values`, 'uncondContext', u?.length);
    uncond = new Float32Array(B * n * D);
    for (let b = 0; b < B; b++) uncond.set(u.length === n * D ? u : u.subarray(b * n * D, (b + 1) * n * D), b * n * D);
  }
  const passes = guided ? 2 : 1;
  const context = new Float32Array(passes * B * n * D);
  context.set(o.context, 0);
  if (uncond) context.set(uncond, B * n * D);
  const schedule = scheduleOf(cfg);
  const scales = o.entropyScaling ? layeredEntropyScales(cfg, H, W) : undefined;
  const ts = sharedTimeGrid(o.steps);
  const clip = o.clip ?? true;
  let z = Float32Array.from(o.noise);
  const x0 = new Float32Array(B * per);
  for (let i = 0; i < o.steps; i++) {
    if (o.signal?.aborted) throw new DiffusionError('ERR_ABORTED', 'Sampling was aborted');
    const { alpha: a, sigma: s } = alphaSigma(shiftedLogSnr(ts[i], top, schedule));
    const zs = cfg.scales.map((side) => {
      const k = top / side;
      const out = new Float32Array(passes * B * C * (H / k) * (W / k));
      const part = C * (H / k) * (W / k);
      for (let b = 0; b < B; b++) {
        const item = z.subarray(b * per, (b + 1) * per);
        const lo = k === 1 ? item : lowerScaleState(item, C, H, W, k, a, s);
        for (let p = 0; p < passes; p++) out.set(lo, (p * B + b) * part);
      }
      return out;
    });
    const t = new Float32Array(passes * B).fill(ts[i]);
    const vs = await model.forward({
      z: zs,
      batch: passes * B,
      height: H,
      width: W,
      t,
      context,
      contextTokens: n,
      selfAttentionScales: scales,
    });
    const vAll = vs[vs.length - 1];
    const { alpha: a2, sigma: s2 } = alphaSigma(shiftedLogSnr(ts[i + 1], top, schedule));
    const next = new Float32Array(B * per);
    for (let j = 0; j < B * per; j++) {
      const v = guided ? vAll[B * per + j] + o.guidance * (vAll[j] - vAll[B * per + j]) : vAll[j];
      let x = a * z[j] - s * v;
      if (clip) x = Math.min(1, Math.max(-1, x));
      const eps = s * z[j] + a * v;
      x0[j] = x;
      next[j] = a2 * x + s2 * eps;
    }
    z = next;
    o.onProgress?.({ step: i + 1, steps: o.steps });
  }
  return x0;
}

/** x̂0 in [−1, 1] ([B, 3, H, W]) -> RGB bytes per image (HWC). */
export function toRgbBytes(x: Float32Array, batch: number, height: number, width: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const hw = height * width;
  for (let b = 0; b < batch; b++) {
    const img = new Uint8Array(hw * 3);
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < hw; p++) {
        const v = (x[(b * 3 + c) * hw + p] + 1) * 127.5;
        img[p * 3 + c] = Math.min(255, Math.max(0, Math.round(v)));
      }
    }
    out.push(img);
  }
  return out;
}
