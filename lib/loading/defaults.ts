// What a checkpoint's tensors cannot tell: family conventions for heads, prediction type, native
// size and scheduler, and the override merge. Every value detection takes from here is recorded
// in DetectedModel.sources so `inspect` can say which numbers were guessed.
import type { ModelConfig, PredictionType, SchedulerConfig } from './types.js';

export type DeepPartial<T> = {
  [K in keyof T]?: T[K] extends Array<infer _U> ? T[K] : T[K] extends object ? DeepPartial<T[K]> : T[K];
};

/** The SD 1.5 scheduler (runwayml/stable-diffusion-v1-5 scheduler_config.json: PNDM). */
export function sd15Scheduler(): SchedulerConfig {
  return {
    betaStart: 0.00085,
    betaEnd: 0.012,
    betaSchedule: 'scaled_linear',
    numTrainTimesteps: 1000,
    predictionType: 'epsilon',
    timestepSpacing: 'leading',
    stepsOffset: 1,
    setAlphaToOne: false,
    clipSample: false,
    className: 'PNDMScheduler',
  };
}

/** SD 2.x: same betas; 768-v ships DDIM with v-prediction, 512-base PNDM with epsilon. */
export function sd2Scheduler(prediction: PredictionType): SchedulerConfig {
  return prediction === 'v_prediction'
    ? { ...sd15Scheduler(), predictionType: prediction, className: 'DDIMScheduler' }
    : sd15Scheduler();
}

/** SD1 (LDM num_heads = 8): 8 heads at every level. */
export function sd1Heads(widths: number[]): number[] {
  return widths.map(() => 8);
}

/**
 * SD2 (LDM num_head_channels = 64): heads = width / 64, rounded up for widths that are not a
 * multiple of 64. That rounding is a guess that is wrong for narrowed test models (tiny-sd2 has
 * heads 2, 4, 8, 8 on width 32): those need a diffusers config, metadata or an explicit override.
 */
export function headDim64(width: number): number {
  return Math.max(1, Math.ceil(width / 64));
}

/** scheduler_config.json (diffusers) -> SchedulerConfig, with diffusers' defaults for absent keys. */
export function schedulerFromDiffusers(json: Record<string, unknown>): SchedulerConfig {
  const base = sd15Scheduler();
  const pick = <T>(key: string, fallback: T): T =>
    json[key] === undefined || json[key] === null ? fallback : (json[key] as T);
  return {
    betaStart: pick('beta_start', 0.0001),
    betaEnd: pick('beta_end', 0.02),
    betaSchedule: pick('beta_schedule', 'linear'),
    numTrainTimesteps: pick('num_train_timesteps', 1000),
    predictionType: pick('prediction_type', 'epsilon'),
    timestepSpacing: pick('timestep_spacing', 'leading'),
    stepsOffset: pick('steps_offset', 0),
    setAlphaToOne: pick('set_alpha_to_one', base.setAlphaToOne),
    clipSample: pick('clip_sample', false),
    className: typeof json._class_name === 'string' ? json._class_name : undefined,
  };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge of overrides into a config (arrays and scalars replace). */
export function mergeConfig(base: ModelConfig, overrides: DeepPartial<ModelConfig> | undefined): ModelConfig {
  if (!overrides) return base;
  const merge = (a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> => {
    const out: Record<string, unknown> = { ...a };
    for (const [k, v] of Object.entries(b)) {
      if (v === undefined) continue;
      out[k] = isPlainObject(v) && isPlainObject(a[k]) ? merge(a[k] as Record<string, unknown>, v) : v;
    }
    return out;
  };
  return merge(
    base as unknown as Record<string, unknown>,
    overrides as Record<string, unknown>,
  ) as unknown as ModelConfig;
}

/** Paths of the overrides given (for DetectedModel.sources), e.g. ['unet.numHeads']. */
export function overridePaths(overrides: unknown, prefix = ''): string[] {
  if (!isPlainObject(overrides)) return prefix ? [prefix] : [];
  return Object.entries(overrides).flatMap(([k, v]) =>
    v === undefined ? [] : overridePaths(v, prefix ? `${prefix}.${k}` : k),
  );
}
