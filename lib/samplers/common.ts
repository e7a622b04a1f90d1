// Shared pieces of the samplers: option resolution, the per-call guard, element-wise combinations and the
// ε / v → x̂0 conversions. Arithmetic is float64 per element, stored float32 (diffusers computes in float32;
// the difference is a few float32 ulps per step).

import { DiffusionError, invalid } from '../errors.js';
import type { PredictionType, SchedulerConfig } from '../loading/types.js';
import { type NoiseTable, noiseTable } from '../schedules/betas.js';
import { type ScheduleInput, type ScheduleName, validateSchedule } from '../schedules/index.js';
// type-only: registry.ts imports the sampler classes, which import this file
import type { SamplerName, SamplerSpec } from './registry.js';

export interface SamplerOptions {
  /** inference steps N (PNDM makes N+1 model calls, Heun 2N−1); ignored when `sigmas` is given */
  steps: number;
  /** the model's scheduler configuration (betas, prediction type, spacing) */
  config: SchedulerConfig;
  /** σ schedule for the σ-based samplers; 'default' (alias 'normal') = the config's discrete spacing */
  schedule?: ScheduleInput;
  /** custom σ_0 > σ_1 > ... (a final 0 is appended when missing); σ-based samplers only */
  sigmas?: ArrayLike<number>;
  /**
   * Stochasticity: DDIM η (default 0); ancestral noise amount for euler-a and dpmpp-2m-sde (default 1 =
   * diffusers; k-diffusion's η otherwise). Other samplers ignore it.
   */
  eta?: number;
  /** LCM: the distillation schedule's step count (default 50) */
  originalInferenceSteps?: number;
  /** DDIM / LCM: clamp x̂0 to [−1, 1] (default: config.clipSample) */
  clipSample?: boolean;
}

/** What the pipeline hands to `step` beside the guided model output. */
export interface StepExtras {
  /**
   * Fresh N(0, I) noise of the latent's size, drawn only when `drawsNoise(i)` is true (diffusers draws one
   * `randn_tensor(latent shape, generator)` per such step, in call order).
   */
  noise?: Float32Array | (() => Float32Array);
  /**
   * CFG++: the unconditional model output ε_u (or v_u). When given, `modelOutput` must be the λ-guided output
   * ε_u + λ(ε_c − ε_u): x̂0 comes from the guided output, the renoising direction from the unconditional one.
   */
  uncondOutput?: Float32Array;
}

export interface Sampler {
  readonly name: SamplerName;
  /** U-Net calls (= steps, PNDM steps + 1, Heun 2·steps − 1) */
  readonly modelCalls: number;
  /** value passed to the U-Net for each call */
  readonly timesteps: readonly number[];
  /** σ per call boundary for σ-based samplers (length = model calls + 1 for euler/lms/dpm/unipc) */
  readonly sigmas?: readonly number[];
  /** multiply the seeded N(0, I) latent by this before the first call */
  readonly initNoiseSigma: number;
  /** samplers that accept StepExtras.uncondOutput */
  readonly supportsCfgpp: boolean;
  timestep(i: number): number;
  /** U-Net input for call i (a new array; identity copy for VP samplers) */
  scaleModelInput(x: Float32Array, i: number): Float32Array;
  /** whether step i consumes a noise draw */
  drawsNoise(i: number): boolean;
  /** latent after call i; calls must come in order 0, 1, ..., modelCalls − 1 */
  step(modelOutput: Float32Array, i: number, x: Float32Array, extras?: StepExtras): Float32Array;
  /** forget multistep history so the sampler can run again */
  reset(): void;
  /**
   * img2img: the first call index for a denoising strength in [0, 1], as diffusers' get_timesteps
   * (t_start = N − min(⌊N·strength⌋, N), times the scheduler order: 2 for Heun).
   */
  beginIndexForStrength(strength: number): number;
  /** start (again) at call `index`: clears history; the next `step` must be for `index` */
  setBeginIndex(index: number): void;
  /** the scheduler's add_noise at call i: x0 + σ_i·noise (VE), α_i·x0 + σ_i·noise (VP) */
  addNoise(x0: Float32Array, noise: Float32Array, i: number): Float32Array;
}

export interface Resolved {
  name: SamplerName;
  /** from the sampler table: whether this sampler implements the CFG++ step */
  cfgpp: boolean;
  steps: number;
  config: SchedulerConfig;
  table: NoiseTable;
  prediction: PredictionType;
  schedule: ScheduleName;
  customSigmas?: number[];
  /** as given; each sampler applies its own default */
  eta?: number;
  originalInferenceSteps: number;
  clipSample: boolean;
}

export function resolveOptions(
  name: SamplerName,
  spec: Pick<SamplerSpec, 'grid' | 'cfgpp'>,
  opts: SamplerOptions,
): Resolved {
  if (opts === null || typeof opts !== 'object') invalid('an options object', 'sampler options', opts);
  const config = opts.config;
  if (config === null || typeof config !== 'object') invalid('a scheduler config object', 'config', config);
  if (config.predictionType !== 'epsilon' && config.predictionType !== 'v_prediction') {
    invalid('one of epsilon, v_prediction', 'predictionType', config.predictionType);
  }
  if (
    opts.sigmas === undefined &&
    (!Number.isInteger(opts.steps) || opts.steps < 1 || opts.steps > config.numTrainTimesteps)
  ) {
    invalid(`an integer from 1 to ${config.numTrainTimesteps}`, 'steps', opts.steps);
  }
  const schedule = validateSchedule(opts.schedule ?? 'default');
  let customSigmas: number[] | undefined;
  if (opts.sigmas !== undefined) {
    const s = Array.from(opts.sigmas as ArrayLike<number>);
    const ok = s.length >= 1 && s.every((v, k) => Number.isFinite(v) && v >= 0 && (k === 0 || v < s[k - 1]));
    if (!ok || s[0] <= 0) invalid('a strictly decreasing array of finite sigmas >= 0', 'sigmas', opts.sigmas);
    if (s[s.length - 1] !== 0) s.push(0);
    if (s.length < 2) invalid('at least one positive sigma', 'sigmas', opts.sigmas);
    customSigmas = s;
  }
  const eta = opts.eta;
  if (eta !== undefined && (typeof eta !== 'number' || !(eta >= 0) || !Number.isFinite(eta)))
    invalid('a finite number >= 0', 'eta', eta);
  if (spec.grid === 'timestep') requireDiscrete(name, schedule, customSigmas);
  return {
    name,
    cfgpp: spec.cfgpp,
    steps: customSigmas ? customSigmas.length - 1 : opts.steps,
    config,
    table: noiseTable(config),
    prediction: config.predictionType,
    schedule,
    customSigmas,
    eta,
    originalInferenceSteps: opts.originalInferenceSteps ?? 50,
    clipSample: opts.clipSample ?? config.clipSample,
  };
}

/** Rejects σ schedules on samplers that walk the discrete timestep grid (DDIM, PNDM, LCM). */
function requireDiscrete(name: SamplerName, schedule: ScheduleName, customSigmas: number[] | undefined): void {
  if (schedule !== 'default') {
    throw new DiffusionError(
      'ERR_UNSUPPORTED',
      `Expected schedule "default" for sampler ${name} but received ${JSON.stringify(schedule)}`,
    );
  }
  if (customSigmas)
    throw new DiffusionError(
      'ERR_UNSUPPORTED',
      `Expected no custom sigmas for sampler ${name} (it walks discrete timesteps)`,
    );
}

/** Discrete samplers index ᾱ by timestep: e.g. leading spacing with N = T and steps_offset 1 would reach T. */
export function requireTimestepsInRange(timesteps: readonly number[], r: Resolved): void {
  const T = r.config.numTrainTimesteps;
  if (timesteps.some((t) => !(t >= 0 && t < T))) {
    // The same form as resolveOptions' steps check, with this sampler's real bound.
    invalid(
      `an integer in [1, ${T - 1}] with this sampler (${r.steps} steps reach timestep ${Math.max(...timesteps)}, past the model's last, ${T - 1})`,
      'steps',
      r.steps,
    );
  }
}

/** Enforces the call order and shapes; subclasses implement `advance`. */
export abstract class SamplerBase implements Sampler {
  abstract readonly timesteps: readonly number[];
  abstract readonly initNoiseSigma: number;
  readonly sigmas?: readonly number[];
  protected next = 0;

  constructor(protected readonly r: Resolved) {}

  get name(): SamplerName {
    return this.r.name;
  }

  get supportsCfgpp(): boolean {
    return this.r.cfgpp;
  }

  get modelCalls(): number {
    return this.timesteps.length;
  }

  timestep(i: number): number {
    this.checkIndex(i);
    return this.timesteps[i];
  }

  scaleModelInput(x: Float32Array, i: number): Float32Array {
    this.checkIndex(i);
    const c = this.inputScale(i);
    return c === 1 ? Float32Array.from(x) : x.map((v) => v * c);
  }

  /** 1/√(σ²+1) for VE samplers, 1 for VP ones (overridden). */
  protected inputScale(_i: number): number {
    return 1;
  }

  drawsNoise(_i: number): boolean {
    return false;
  }

  step(modelOutput: Float32Array, i: number, x: Float32Array, extras: StepExtras = {}): Float32Array {
    this.checkIndex(i);
    if (i !== this.next)
      invalid(`call index ${this.next} (steps run in order; reset() to start over)`, 'step index', i);
    if (!(modelOutput instanceof Float32Array)) invalid('a Float32Array', 'modelOutput', modelOutput);
    if (!(x instanceof Float32Array) || x.length !== modelOutput.length) {
      invalid(`a Float32Array of length ${modelOutput.length}`, 'latent', x);
    }
    if (extras.uncondOutput !== undefined) {
      if (!this.supportsCfgpp) {
        throw new DiffusionError(
          'ERR_UNSUPPORTED',
          `Expected a sampler with CFG++ support (listCfgppSamplers()) for uncondOutput but received ${JSON.stringify(this.name)}`,
        );
      }
      if (!(extras.uncondOutput instanceof Float32Array) || extras.uncondOutput.length !== x.length) {
        invalid(`a Float32Array of length ${x.length}`, 'uncondOutput', extras.uncondOutput);
      }
    }
    const out = this.advance(modelOutput, i, x, extras);
    this.next++;
    return out;
  }

  reset(): void {
    this.next = 0;
    this.resetState();
  }

  /** inference steps N (calls per step: 2 for Heun, PNDM's extra call sits inside the list) */
  protected get schedulerOrder(): number {
    return 1;
  }

  beginIndexForStrength(strength: number): number {
    if (typeof strength !== 'number' || !(strength >= 0 && strength <= 1))
      invalid('a number from 0 to 1', 'strength', strength);
    const order = this.schedulerOrder;
    const n = order === 2 ? (this.timesteps.length + 1) / 2 : this.timesteps.length;
    const steps = this.name === 'pndm' ? n - 1 : n;
    const init = Math.min(Math.floor(steps * strength), steps);
    return Math.max(steps - init, 0) * order;
  }

  setBeginIndex(index: number): void {
    this.checkIndex(index);
    this.resetState();
    this.next = index;
  }

  addNoise(x0: Float32Array, noise: Float32Array, i: number): Float32Array {
    this.checkIndex(i);
    if (!(x0 instanceof Float32Array) || !(noise instanceof Float32Array) || noise.length !== x0.length) {
      invalid(`two Float32Arrays of equal length`, 'addNoise inputs', noise);
    }
    const [a, s] = this.noiseCoefficients(i);
    return lincomb([
      [a, x0],
      [s, noise],
    ]);
  }

  /** (scale of x0, scale of noise) of the noised latent at call i */
  protected abstract noiseCoefficients(i: number): [number, number];

  protected resetState(): void {}

  protected abstract advance(modelOutput: Float32Array, i: number, x: Float32Array, extras: StepExtras): Float32Array;

  protected noise(i: number, extras: StepExtras, length: number): Float32Array {
    const n = typeof extras.noise === 'function' ? extras.noise() : extras.noise;
    if (!(n instanceof Float32Array) || n.length !== length) {
      invalid(`noise: a Float32Array of length ${length} for step ${i}`, 'noise', n);
    }
    return n;
  }

  protected checkIndex(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.timesteps.length) {
      invalid(`an integer from 0 to ${this.timesteps.length - 1}`, 'call index', i);
    }
  }
}

// ---- element-wise helpers -------------------------------------------------------------------------------

/** out[k] = Σ c_j · a_j[k] */
export function lincomb(terms: Array<[number, Float32Array]>): Float32Array {
  const n = terms[0][1].length;
  const out = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    let s = 0;
    for (const [c, a] of terms) s += c * a[k];
    out[k] = s;
  }
  return out;
}

/** k-diffusion (VE) denoiser: x̂0 from the model output at noise level σ. */
export function denoisedVE(m: Float32Array, x: Float32Array, sigma: number, prediction: PredictionType): Float32Array {
  if (prediction === 'epsilon')
    return lincomb([
      [1, x],
      [-sigma, m],
    ]);
  // v: x̂0 = −σ/√(σ²+1)·v + x/(σ²+1)
  return lincomb([
    [-sigma / Math.sqrt(sigma * sigma + 1), m],
    [1 / (sigma * sigma + 1), x],
  ]);
}

/** VP form (x = √ᾱ·x0 + √(1−ᾱ)·ε): returns x̂0 and ε̂. */
export function splitVP(
  m: Float32Array,
  x: Float32Array,
  alpha: number,
  sigma: number,
  prediction: PredictionType,
): { x0: Float32Array; eps: Float32Array } {
  if (prediction === 'epsilon')
    return {
      x0: lincomb([
        [1 / alpha, x],
        [-sigma / alpha, m],
      ]),
      eps: m,
    };
  return {
    x0: lincomb([
      [alpha, x],
      [-sigma, m],
    ]),
    eps: lincomb([
      [alpha, m],
      [sigma, x],
    ]),
  };
}

export function clamp(a: Float32Array, r = 1): Float32Array {
  return a.map((v) => Math.min(r, Math.max(-r, v)));
}

/** √(σ²+1) in float32 like diffusers' `(sigma**2 + 1) ** 0.5`. */
export function veInitNoiseSigma(sigmaMax: number, spacing: SchedulerConfig['timestepSpacing']): number {
  if (spacing === 'linspace' || spacing === 'trailing') return sigmaMax;
  return Math.fround(Math.sqrt(Math.fround(Math.fround(sigmaMax * sigmaMax) + 1)));
}
