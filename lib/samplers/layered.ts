// The layered sampler (docs/design.md §5.2): DDIM (η = 0) in the top scale's (α, σ) over a uniform grid of the shared t
// from 1 to 0. Each step the lower-scale inputs come from the top state, z_lo = D_k(z)/sqrt(α² + σ²/k²)
// (lowerScaleState), the model's top-scale v gives x̂0 = α z − σ v (clipped to [−1, 1]) and ε̂ = σ z + α v, and
// z ← α' x̂0 + σ' ε̂. The guidance combine is pluggable (LayeredGuidance, lib/guidance/layered.ts holds CFG,
// CFG++, S-CFG and characteristic guidance); the default is CFG on v: v = v_u + w (v_c − v_u), cond and uncond
// batched in one call ([cond B; uncond B]).
// At a size other than native the schedule keeps the native sides (the shift belongs to the scale index) and
// `entropyScaling` rescales the self-attention softmax (docs/design.md §5.1). training/sample.py is the reference.
import { DiffusionError, invalid } from '../errors.js';
import type {
  LayeredAttention,
  LayeredForwardArgs,
  LayeredModelConfig,
  LayeredOutputWithAttention,
} from '../native/layered.js';
import { lowerScaleState } from '../noise/multiscale.js';
import { alphaSigma, type ShiftedCosineConfig, sharedTimeGrid, shiftedLogSnr } from '../schedules/shifted-cosine.js';

export interface LayeredDenoiser {
  readonly config: LayeredModelConfig;
  forward(args: LayeredForwardArgs): Promise<Float32Array[]>;
  /** needed only by guidance that captures attention (S-CFG) */
  forwardWithAttention?(args: LayeredForwardArgs): Promise<LayeredOutputWithAttention>;
}

/** One step of the sampler as a guidance combine sees it. */
export interface LayeredStep {
  /** 0-based step index and the step count */
  index: number;
  steps: number;
  /** shared time and the top scale's (α, σ) at this step */
  t: number;
  alpha: number;
  sigma: number;
  batch: number;
  channels: number;
  height: number;
  width: number;
  /** the current top-scale state [batch, C, H, W] */
  z: Float32Array;
  /** contexts of item b ([tokens, D]) */
  condContext(b: number): Float32Array;
  uncondContext(b: number): Float32Array;
  /**
   * Evaluates the model at this step's t on k top-scale states [k, C, H, W] (lower scales derived from each)
   * with contexts [k, tokens, D]; resolves to the top-scale v [k, C, H, W]. For guidance that needs more
   * passes than the batched one (characteristic guidance).
   */
  evaluate(z: Float32Array, context: Float32Array, k: number): Promise<Float32Array>;
  signal?: AbortSignal;
}

/** What a guidance combine returns: the v that gives x̂0, and optionally another v for the renoising ε̂. */
export interface LayeredCombined {
  v: Float32Array;
  /** CFG++: the unconditional v, so ε̂ = σ z + α v_u */
  vRenoise?: Float32Array;
  /** model passes this step beyond the batched one (characteristic guidance) */
  iterations?: number;
  /** characteristic guidance: false when a sample's solver fell back to CFG */
  converged?: boolean;
}

export interface LayeredGuidance {
  /** false: one conditional pass per step and v = v_c */
  readonly unconditional: boolean;
  /** the batched pass also returns the attention probabilities (S-CFG) */
  readonly captureAttention?: boolean;
  /**
   * Combines the batched pass: vCond/vUncond [batch, C, H, W] (vUncond only when `unconditional`),
   * attention (with captureAttention) over the [cond B; uncond B] batch.
   */
  combine(
    step: LayeredStep,
    vCond: Float32Array,
    vUncond: Float32Array | undefined,
    attention: LayeredAttention[] | undefined,
  ): LayeredCombined | Promise<LayeredCombined>;
}

export interface LayeredProgress {
  step: number;
  steps: number;
  /** the current x̂0 [batch, C, H, W] in [−1, 1] (a view the next step replaces) */
  x0: Float32Array;
  /** model passes this step beyond the batched one (characteristic guidance) */
  iterations?: number;
  /** characteristic guidance: false when a sample's solver fell back to CFG */
  converged?: boolean;
}

export interface LayeredSampleOptions {
  /** initial N(0, I) noise at the top scale, [batch, C, height, width] */
  noise: Float32Array;
  batch: number;
  height: number;
  width: number;
  steps: number;
  /** CFG scale w (1 = conditional only, one pass per step); ignored when `guide` is given */
  guidance: number;
  /** a guidance combine other than plain CFG (lib/guidance/layered.ts) */
  guide?: LayeredGuidance;
  /** [batch, tokens, context_dim] */
  context: Float32Array;
  /** unconditional context: [1, tokens, D] (shared) or [batch, tokens, D]; required when guided */
  uncondContext?: Float32Array;
  contextTokens: number;
  entropyScaling?: boolean;
  /** clamp x̂0 to [−1, 1] (default true) */
  clip?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: LayeredProgress) => void;
}

export function scheduleOf(config: LayeredModelConfig): ShiftedCosineConfig {
  return {
    baseSize: config.schedule.base_size,
    logsnrMin: config.schedule.logsnr_min,
    logsnrMax: config.schedule.logsnr_max,
  };
}

/** The side every size must be a multiple of: the lowest scale is H·s0/top and it is halved twice. */
export function layeredUnit(config: LayeredModelConfig): number {
  const top = config.scales[config.scales.length - 1];
  return (top / config.scales[0]) * 4;
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
    // Each head has ch / floor(ch / head_dim) channels (training/model.py), ch = inner1, inner2, inner1.
    const ch = div === 4 ? config.inner_channels[1] : config.inner_channels[0];
    const d = ch / Math.max(1, Math.floor(ch / config.head_dim));
    return Math.sqrt(Math.log(n) / Math.log(t)) / Math.sqrt(d);
  });
}

/** Plain CFG on v with a constant weight (the default combine). */
export function constantCfg(scale: number): LayeredGuidance {
  return {
    unconditional: scale !== 1,
    combine(_step, vc, vu) {
      if (!vu) return { v: vc };
      const v = new Float32Array(vc.length);
      for (let j = 0; j < v.length; j++) v[j] = vu[j] + scale * (vc[j] - vu[j]);
      return { v };
    },
  };
}

/** Runs the sampler; resolves to x̂0 at the top scale, [batch, C, height, width] in [−1, 1]. */
export async function sampleLayered(model: LayeredDenoiser, o: LayeredSampleOptions): Promise<Float32Array> {
  const cfg = model.config;
  const C = cfg.in_channels;
  const top = cfg.scales[cfg.scales.length - 1];
  const unit = layeredUnit(cfg);
  const { batch: B, height: H, width: W } = o;
  if (!Number.isInteger(B) || B < 1) invalid('a positive integer', 'batch', B);
  if (!Number.isInteger(H) || H < unit || H % unit) invalid(`a multiple of ${unit}`, 'height', H);
  if (!Number.isInteger(W) || W < unit || W % unit) invalid(`a multiple of ${unit}`, 'width', W);
  if (!Number.isInteger(o.steps) || o.steps < 1) invalid('a positive integer', 'steps', o.steps);
  const per = C * H * W;
  if (o.noise.length !== B * per) invalid(`${B * per} values`, 'noise', o.noise.length);
  const D = cfg.context_dim,
    n = o.contextTokens;
  const nd = n * D;
  if (o.context.length !== B * nd) invalid(`${B * nd} values`, 'context', o.context.length);
  if (!o.guide && !Number.isFinite(o.guidance)) invalid('a finite number', 'guidance', o.guidance);
  const guide = o.guide ?? constantCfg(o.guidance);
  const guided = guide.unconditional;
  if (guide.captureAttention && !model.forwardWithAttention)
    throw new DiffusionError('ERR_UNSUPPORTED', 'This layered model cannot return attention probabilities');
  let uncond: Float32Array | undefined;
  if (guided) {
    const u = o.uncondContext;
    if (!u || (u.length !== nd && u.length !== B * nd))
      invalid(`${nd} or ${B * nd} values`, 'uncondContext', u?.length);
    uncond = new Float32Array(B * nd);
    for (let b = 0; b < B; b++) uncond.set(u.length === nd ? u : u.subarray(b * nd, (b + 1) * nd), b * nd);
  }
  const passes = guided ? 2 : 1;
  const context = new Float32Array(passes * B * nd);
  context.set(o.context, 0);
  if (uncond) context.set(uncond, B * nd);
  const schedule = scheduleOf(cfg);
  const scales = o.entropyScaling ? layeredEntropyScales(cfg, H, W) : undefined;
  const ts = sharedTimeGrid(o.steps);
  const clip = o.clip ?? true;

  /** forward args for k top-scale states at time t with (α, σ) */
  const forwardArgs = (zTop: Float32Array, k: number, ctx: Float32Array, t: number, a: number, s: number) => {
    const zs = cfg.scales.map((side) => {
      const f = top / side;
      if (f === 1) return zTop;
      const part = C * (H / f) * (W / f);
      const out = new Float32Array(k * part);
      for (let b = 0; b < k; b++)
        out.set(lowerScaleState(zTop.subarray(b * per, (b + 1) * per), C, H, W, f, a, s), b * part);
      return out;
    });
    return {
      z: zs,
      batch: k,
      height: H,
      width: W,
      t: new Float32Array(k).fill(t),
      context: ctx,
      contextTokens: n,
      selfAttentionScales: scales,
    } satisfies LayeredForwardArgs;
  };

  let z = Float32Array.from(o.noise);
  const x0 = new Float32Array(B * per);
  for (let i = 0; i < o.steps; i++) {
    if (o.signal?.aborted) throw new DiffusionError('ERR_ABORTED', 'Sampling was aborted');
    const { alpha: a, sigma: s } = alphaSigma(shiftedLogSnr(ts[i], top, schedule));
    // The lower-scale states are computed once per item and repeated for the uncond half.
    const once = forwardArgs(z, B, context.subarray(0, B * nd), ts[i], a, s);
    const args: LayeredForwardArgs = guided
      ? {
          ...once,
          z: once.z.map((zi) => {
            const both = new Float32Array(2 * zi.length);
            both.set(zi, 0);
            both.set(zi, zi.length);
            return both;
          }),
          batch: 2 * B,
          t: new Float32Array(2 * B).fill(ts[i]),
          context,
        }
      : once;
    let vAll: Float32Array;
    let attention: LayeredAttention[] | undefined;
    if (guide.captureAttention && model.forwardWithAttention) {
      const r = await model.forwardWithAttention(args);
      vAll = r.outputs[r.outputs.length - 1];
      attention = r.attention;
    } else {
      const vs = await model.forward(args);
      vAll = vs[vs.length - 1];
    }
    if (o.signal?.aborted) throw new DiffusionError('ERR_ABORTED', 'Sampling was aborted');
    const step: LayeredStep = {
      index: i,
      steps: o.steps,
      t: ts[i],
      alpha: a,
      sigma: s,
      batch: B,
      channels: C,
      height: H,
      width: W,
      z,
      condContext: (b) => context.subarray(b * nd, (b + 1) * nd),
      uncondContext: (b) => (uncond ?? context).subarray(b * nd, (b + 1) * nd),
      evaluate: async (zTop, ctx, k) => {
        const vs = await model.forward(forwardArgs(zTop, k, ctx, ts[i], a, s));
        return vs[vs.length - 1];
      },
      signal: o.signal,
    };
    const r = await guide.combine(
      step,
      vAll.subarray(0, B * per),
      guided ? vAll.subarray(B * per, 2 * B * per) : undefined,
      attention,
    );
    const { v } = r;
    const vr = r.vRenoise ?? v;
    const { alpha: a2, sigma: s2 } = alphaSigma(shiftedLogSnr(ts[i + 1], top, schedule));
    const next = new Float32Array(B * per);
    for (let j = 0; j < B * per; j++) {
      let x = a * z[j] - s * v[j];
      if (clip) x = Math.min(1, Math.max(-1, x));
      const eps = s * z[j] + a * vr[j];
      x0[j] = x;
      next[j] = a2 * x + s2 * eps;
    }
    z = next;
    o.onProgress?.({
      step: i + 1,
      steps: o.steps,
      x0,
      ...(r.iterations === undefined ? {} : { iterations: r.iterations }),
      ...(r.converged === undefined ? {} : { converged: r.converged }),
    });
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
