// Generation options: types, defaults and validation. Every message reads
// "Expected <what> for <name> but received <value>".
// The name lists come from the modules that own them (the sampler table, the schedule list, the guidance
// modules) and are re-exported here for the CLI and the example server.
import { invalid } from './errors.js';
import { ATTENTION_SCALING, type AttentionScaling } from './guidance/attention-scaling.js';
import { GUIDANCE_METHODS, type GuidanceMethod } from './guidance/methods.js';
import { GUIDANCE_SCHEDULES, type GuidanceSchedule } from './guidance/schedule.js';
import { CFGPP_SAMPLERS, SAMPLERS, type SamplerName } from './samplers/registry.js';
import { SCHEDULES, type ScheduleInput, type ScheduleName, validateSchedule } from './schedules/index.js';

export {
  ATTENTION_SCALING,
  type AttentionScaling,
  CFGPP_SAMPLERS,
  GUIDANCE_METHODS,
  GUIDANCE_SCHEDULES,
  type GuidanceMethod,
  type GuidanceSchedule,
  SAMPLERS,
  type SamplerName,
  SCHEDULES,
  type ScheduleName,
};

export interface GuidanceOptions {
  method?: GuidanceMethod;
  /** CFG weight w (cfg, s-cfg, characteristic) or λ ∈ [0, 1] (cfg++) */
  scale?: number;
  schedule?: GuidanceSchedule;
  /** guidance rescale φ ∈ [0, 1] */
  rescale?: number;
}

export interface ProgressEvent {
  step: number;
  steps: number;
  fraction: number;
  elapsedMs: number;
  etaMs: number;
  /** fixed-point iterations used this step (characteristic guidance) */
  iterations?: number;
  /** characteristic guidance: false when this step's solver hit its iteration cap and fell back to CFG */
  converged?: boolean;
  /**
   * The sampler's current state after this step, [1, C, H/8, W/8] for Stable Diffusion (for previews).
   * A view that the next step replaces: copy it to keep it.
   */
  latents?: Float32Array;
}

export interface GenerateOptions {
  prompt: string;
  negativePrompt?: string;
  width?: number;
  height?: number;
  steps?: number;
  seed?: number | bigint;
  rng?: 'torch-cpu';
  sampler?: SamplerName;
  /** σ schedule; 'normal' is accepted as an alias of 'default' */
  schedule?: ScheduleInput;
  /** custom descending sigmas (k-diffusion samplers); overrides steps and schedule */
  sigmas?: number[];
  /** DDIM η / ancestral noise amount */
  eta?: number;
  /** a number is the CFG scale */
  guidance?: number | GuidanceOptions;
  attentionScaling?: AttentionScaling;
  /** skip the last n text-encoder layers (diffusers' clip_skip) */
  clipSkip?: number;
  /** initial noise [1, 4, H/8, W/8], scaled by the sampler's initial sigma (as diffusers' latents=) */
  latents?: Float32Array;
  /** decode in tiles: true, false or 'auto' (tiles above 1024² pixels) */
  vaeTiling?: boolean | 'auto';
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
}

export interface ResolvedOptions {
  prompt: string;
  negativePrompt: string;
  width: number;
  height: number;
  steps: number;
  seed: bigint;
  sampler: SamplerName;
  schedule: ScheduleName;
  sigmas?: number[];
  eta: number;
  guidance: Required<GuidanceOptions>;
  attentionScaling: AttentionScaling;
  clipSkip: number;
  latents?: Float32Array;
  vaeTiling: boolean | 'auto';
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
}

const MAX_SIDE = 4096;

function oneOf<T extends string>(list: readonly T[], value: unknown, name: string): T {
  if (typeof value !== 'string' || !(list as readonly string[]).includes(value))
    invalid(`one of ${list.join(', ')}`, name, value);
  return value as T;
}

function finite(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    invalid(`a finite number in [${min}, ${max}]`, name, value);
  }
  return value;
}

function integer(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    invalid(`an integer in [${min}, ${max}]`, name, value);
  }
  return value;
}

function side(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) invalid('an integer', name, value);
  if (value % 8 !== 0) invalid('a multiple of 8', name, value);
  if (value < 64 || value > MAX_SIDE) invalid(`a size in [64, ${MAX_SIDE}]`, name, value);
  return value;
}

/** A random 32-bit seed when none is given (reported back in the result). */
export function randomSeed(): bigint {
  return BigInt(Math.floor(Math.random() * 2 ** 32));
}

/** Every key generate() reads: any other is an error (a misspelt option must not pass silently). */
export const GENERATE_OPTION_KEYS = [
  'prompt',
  'negativePrompt',
  'width',
  'height',
  'steps',
  'seed',
  'rng',
  'sampler',
  'schedule',
  'sigmas',
  'eta',
  'guidance',
  'attentionScaling',
  'clipSkip',
  'latents',
  'vaeTiling',
  'signal',
  'onProgress',
] as const;
const GUIDANCE_KEYS = ['method', 'scale', 'schedule', 'rescale'];

/** The per-model defaults and capabilities validation needs (PipelineInfo carries them). */
export interface ModelDefaults {
  size: number;
  sampler: SamplerName;
  steps?: number;
  /** CFG weight when the request names none (cfg, s-cfg, characteristic) */
  guidance?: number;
  /** the samplers this model can run (default: all) */
  samplers?: readonly string[];
}

/** Throws for a key of `o` that is not in `keys`, naming the accepted ones. */
export function rejectUnknownKeys(o: object, keys: readonly string[], name: string): void {
  for (const key of Object.keys(o)) {
    if (!keys.includes(key)) invalid(`one of ${keys.join(', ')}`, `an option name in ${name}`, key);
  }
}

export function resolveOptions(o: GenerateOptions, defaults: ModelDefaults): ResolvedOptions {
  if (o === null || typeof o !== 'object') invalid('an options object', 'options', o);
  rejectUnknownKeys(o, GENERATE_OPTION_KEYS, 'options');
  if (typeof o.prompt !== 'string') invalid('a string', 'prompt', o.prompt);
  if (o.negativePrompt !== undefined && typeof o.negativePrompt !== 'string')
    invalid('a string', 'negativePrompt', o.negativePrompt);
  const width = o.width === undefined ? defaults.size : side(o.width, 'width');
  const height = o.height === undefined ? defaults.size : side(o.height, 'height');
  const steps = o.steps === undefined ? (defaults.steps ?? 25) : integer(o.steps, 'steps', 1, 1000);
  let seed: bigint;
  if (o.seed === undefined) seed = randomSeed();
  else if (typeof o.seed === 'bigint') {
    if (o.seed < 0n || o.seed >= 2n ** 64n) invalid('an integer in [0, 2^64)', 'seed', o.seed);
    seed = o.seed;
  } else {
    // one range for both forms; above 2^53 a number cannot be exact, so it must come as a bigint
    if (typeof o.seed !== 'number' || !Number.isInteger(o.seed) || o.seed < 0)
      invalid('an integer in [0, 2^64)', 'seed', o.seed);
    if (o.seed > Number.MAX_SAFE_INTEGER)
      invalid('an integer in [0, 2^64) (above 2^53 − 1 as a bigint, to be exact)', 'seed', o.seed);
    seed = BigInt(o.seed);
  }
  if (o.rng !== undefined) oneOf(['torch-cpu'] as const, o.rng, 'rng');
  const sampler = o.sampler === undefined ? defaults.sampler : oneOf(SAMPLERS, o.sampler, 'sampler');
  if (defaults.samplers && !defaults.samplers.includes(sampler))
    invalid(`one of ${defaults.samplers.join(', ')} (the samplers this model supports)`, 'sampler', sampler);
  const schedule = o.schedule === undefined ? 'default' : validateSchedule(o.schedule, 'schedule');
  let sigmas: number[] | undefined;
  if (o.sigmas !== undefined) {
    if (!Array.isArray(o.sigmas) || o.sigmas.length < 2) invalid('an array of at least 2 sigmas', 'sigmas', o.sigmas);
    o.sigmas.forEach((s, i) => finite(s, `sigmas[${i}]`, 0, 1e6));
    for (let i = 1; i < o.sigmas.length; i++)
      if (!(o.sigmas[i] < o.sigmas[i - 1])) invalid('strictly decreasing values', 'sigmas', o.sigmas);
    sigmas = o.sigmas.slice();
  }
  const eta = o.eta === undefined ? (sampler === 'ddim' ? 0 : 1) : finite(o.eta, 'eta', 0, 10);
  const g = typeof o.guidance === 'number' || o.guidance === undefined ? { scale: o.guidance } : o.guidance;
  if (g === null || typeof g !== 'object') invalid('a number or a guidance object', 'guidance', o.guidance);
  rejectUnknownKeys(g, GUIDANCE_KEYS, 'guidance');
  const method = g.method === undefined ? 'cfg' : oneOf(GUIDANCE_METHODS, g.method, 'guidance.method');
  const scale =
    g.scale === undefined
      ? method === 'cfg++'
        ? 0.6
        : (defaults.guidance ?? 7.5)
      : method === 'cfg++'
        ? finite(g.scale, 'guidance.scale', 0, 1)
        : finite(g.scale, 'guidance.scale', 0, 100);
  const guidance = {
    method,
    scale,
    schedule: g.schedule === undefined ? 'constant' : oneOf(GUIDANCE_SCHEDULES, g.schedule, 'guidance.schedule'),
    rescale: g.rescale === undefined ? 0 : finite(g.rescale, 'guidance.rescale', 0, 1),
  } as Required<GuidanceOptions>;
  if (method === 'cfg++' && !CFGPP_SAMPLERS.includes(sampler)) {
    invalid(`one of ${CFGPP_SAMPLERS.join(', ')} with cfg++ guidance`, 'sampler', sampler);
  }
  const attentionScaling =
    o.attentionScaling === undefined ? 'auto' : oneOf(ATTENTION_SCALING, o.attentionScaling, 'attentionScaling');
  const clipSkip = o.clipSkip === undefined ? 0 : integer(o.clipSkip, 'clipSkip', 0, 12);
  if (o.latents !== undefined) {
    const n = 4 * (height / 8) * (width / 8);
    if (!(o.latents instanceof Float32Array)) invalid('a Float32Array', 'latents', o.latents);
    if (o.latents.length !== n)
      invalid(`a Float32Array of ${n} values ([1, 4, ${height / 8}, ${width / 8}])`, 'latents', o.latents);
    for (let i = 0; i < n; i++)
      if (!Number.isFinite(o.latents[i])) invalid('finite values', 'latents', `${o.latents[i]} at index ${i}`);
  }
  const vaeTiling = o.vaeTiling === undefined ? 'auto' : o.vaeTiling;
  if (vaeTiling !== 'auto' && typeof vaeTiling !== 'boolean')
    invalid("true, false or 'auto'", 'vaeTiling', o.vaeTiling);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) invalid('an AbortSignal', 'signal', o.signal);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function')
    invalid('a function', 'onProgress', o.onProgress);
  return {
    prompt: o.prompt,
    negativePrompt: o.negativePrompt ?? '',
    width,
    height,
    steps,
    seed,
    sampler,
    schedule,
    sigmas,
    eta,
    guidance,
    attentionScaling,
    clipSkip,
    latents: o.latents,
    vaeTiling,
    signal: o.signal,
    onProgress: o.onProgress,
  };
}
