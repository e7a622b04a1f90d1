// Noise schedules: the training table, timestep spacings and σ schedules, assembled into the per-call
// (timestep, σ) plans that diffusers' set_timesteps produces for each scheduler family.
import { invalid } from '../errors.js';
import type { SchedulerConfig } from '../loading/types.js';
import { type NoiseTable, noiseTable } from './betas.js';
import { exponentialSigmas, karrasSigmas, sgmUniformSigmas, sigmasAtTimesteps, sigmaToT } from './sigmas.js';
import { dpmTimesteps, kdiffusionTimesteps, roundHalfEven } from './timesteps.js';

export * from './betas.js';
export * from './sigmas.js';
export * from './timesteps.js';

/**
 * The σ schedules, the one list every option and sampler reads. 'default' is the model config's own spacing (as
 * diffusers); A1111 and k-diffusion call it 'normal', accepted as an alias wherever a schedule is validated.
 */
export const SCHEDULES = ['default', 'karras', 'exponential', 'sgm-uniform'] as const;
export type ScheduleName = (typeof SCHEDULES)[number];
/** Other names accepted for a schedule. */
export const SCHEDULE_ALIASES: Readonly<Record<string, ScheduleName>> = { normal: 'default' };
/** What a caller may pass: a schedule or one of its aliases. */
export type ScheduleInput = ScheduleName | 'normal';

/** Throws `Expected one of default, karras, exponential, sgm-uniform for schedule but received …`. */
export function validateSchedule(value: unknown, name = 'schedule'): ScheduleName {
  if (typeof value === 'string') {
    if ((SCHEDULES as readonly string[]).includes(value)) return value as ScheduleName;
    if (Object.hasOwn(SCHEDULE_ALIASES, value)) return SCHEDULE_ALIASES[value];
  }
  return invalid(`one of ${SCHEDULES.join(', ')}`, name, value);
}

export interface SigmaPlan {
  /** U-Net timestep per step (N values) */
  timesteps: number[];
  /** σ_0 ... σ_{N−1}, 0 (N+1 float32 values) */
  sigmas: number[];
}

export interface PlanRequest {
  steps: number;
  config: SchedulerConfig;
  schedule: ScheduleName;
  /** custom σ list ending in 0 (overrides schedule and steps) */
  customSigmas?: number[];
}

const f32 = Math.fround;

/** σs of a schedule other than 'default'; `range` gives (σ_min, σ_max) for karras / exponential. */
function scheduledSigmas(req: PlanRequest, table: NoiseTable, range: [number, number]): number[] {
  switch (req.schedule) {
    case 'karras':
      return karrasSigmas(range[0], range[1], req.steps);
    case 'exponential':
      return exponentialSigmas(range[0], range[1], req.steps);
    case 'sgm-uniform':
      return sgmUniformSigmas(table, req.steps);
    default:
      throw new Error(`unreachable schedule ${req.schedule}`);
  }
}

/**
 * Euler / Euler a / LMS / Heun (EulerDiscreteScheduler.set_timesteps): σ interpolated at the spaced float
 * timesteps; Karras / exponential span [σ(t_last), σ(t_first)] of that spacing; other schedules map σ back to
 * a fractional timestep with `_sigma_to_t`. Final σ = 0.
 */
export function kdiffusionPlan(req: PlanRequest): SigmaPlan {
  const table = noiseTable(req.config);
  if (req.customSigmas) return fromSigmas(req.customSigmas.slice(0, -1), table, false);
  const timesteps = kdiffusionTimesteps(req.steps, req.config);
  const spaced = sigmasAtTimesteps(timesteps, table);
  if (req.schedule === 'default') return { timesteps, sigmas: [...spaced, 0] };
  // diffusers passes the float64 interpolation here; it equals the float32 table value at whole timesteps
  const sig = scheduledSigmas(req, table, [spaced[spaced.length - 1], spaced[0]]);
  return fromSigmas(sig, table, false);
}

/**
 * DPMSolverMultistep / UniPC: N integer timesteps from N+1 points; Karras / exponential span the whole table
 * [σ_0, σ_{T−1}], their timesteps are `_sigma_to_t` rounded half to even. Final σ = 0 (final_sigmas_type "zero").
 */
export function dpmPlan(req: PlanRequest): SigmaPlan {
  const table = noiseTable(req.config);
  if (req.customSigmas) return fromSigmas(req.customSigmas.slice(0, -1), table, true);
  if (req.schedule === 'default') {
    const timesteps = dpmTimesteps(req.steps, req.config);
    return { timesteps, sigmas: [...sigmasAtTimesteps(timesteps, table), 0] };
  }
  const sig = scheduledSigmas(req, table, [table.sigmas[0], table.sigmas[table.sigmas.length - 1]]);
  return fromSigmas(sig, table, true);
}

function fromSigmas(sig: number[], table: NoiseTable, integerTimesteps: boolean): SigmaPlan {
  const timesteps = sig.map((s) => {
    const t = sigmaToT(s, table.logSigmas);
    return integerTimesteps ? roundHalfEven(t) : f32(t);
  });
  return { timesteps, sigmas: [...sig.map(f32), 0] };
}
