// The sampler table: the one place a sampler is registered (its name in SAMPLERS and its row in the table, both
// below and checked against each other by the compiler). The SamplerName type, validation, the CFG++ list, the
// schedule rule (σ vs timestep grid) and the diffusers class mapping all derive from it; options.ts, the CLI and
// the server read SAMPLERS. Adding a sampler is a name, a row and its class (docs/architecture.md).
import { DiffusionError, describe } from '../errors.js';
import type { Resolved, Sampler } from './common.js';
import { DdimSampler } from './ddim.js';
import { DpmSolverMultistepSampler } from './dpmpp-2m.js';
import { EulerSampler } from './euler.js';
import { EulerAncestralSampler } from './euler-a.js';
import { HeunSampler } from './heun.js';
import { LcmSampler } from './lcm.js';
import { LmsSampler } from './lms.js';
import { PndmSampler } from './pndm.js';
import { UniPcSampler } from './unipc.js';

export interface SamplerSpec {
  create(r: Resolved): Sampler;
  /** the diffusers scheduler class this reproduces (the first row with a class wins the reverse mapping) */
  diffusersClass: string;
  /**
   * 'sigma': takes σ schedules and custom sigmas (k-diffusion and DPM-Solver families);
   * 'timestep': walks the discrete training grid, schedule 'default' only (DDIM, PNDM, LCM).
   */
  grid: 'sigma' | 'timestep';
  /** implements the CFG++ step (StepExtras.uncondOutput) */
  cfgpp: boolean;
}

/**
 * Every sampler name, in the table's order. Written as its own list because SamplerName types each sampler's
 * `name` and so cannot be read back from the table's type; the table below must have exactly these rows (the
 * compiler checks both directions).
 */
export const SAMPLERS = Object.freeze([
  'euler',
  'euler-a',
  'heun',
  'dpmpp-2m',
  'dpmpp-2m-sde',
  'ddim',
  'pndm',
  'lms',
  'unipc',
  'lcm',
] as const);
export type SamplerName = (typeof SAMPLERS)[number];

function row(
  create: (r: Resolved) => Sampler,
  diffusersClass: string,
  grid: SamplerSpec['grid'],
  cfgpp: boolean,
): SamplerSpec {
  return Object.freeze({ create, diffusersClass, grid, cfgpp });
}

const ROWS: Record<SamplerName, SamplerSpec> = {
  euler: row((r) => new EulerSampler(r), 'EulerDiscreteScheduler', 'sigma', true),
  'euler-a': row((r) => new EulerAncestralSampler(r), 'EulerAncestralDiscreteScheduler', 'sigma', true),
  heun: row((r) => new HeunSampler(r), 'HeunDiscreteScheduler', 'sigma', false),
  'dpmpp-2m': row((r) => new DpmSolverMultistepSampler(r), 'DPMSolverMultistepScheduler', 'sigma', true),
  // algorithm_type "sde-dpmsolver++" of the same class (samplerFromDiffusersConfig reads the switch)
  'dpmpp-2m-sde': row((r) => new DpmSolverMultistepSampler(r), 'DPMSolverMultistepScheduler', 'sigma', false),
  ddim: row((r) => new DdimSampler(r), 'DDIMScheduler', 'timestep', true),
  pndm: row((r) => new PndmSampler(r), 'PNDMScheduler', 'timestep', false),
  lms: row((r) => new LmsSampler(r), 'LMSDiscreteScheduler', 'sigma', false),
  unipc: row((r) => new UniPcSampler(r), 'UniPCMultistepScheduler', 'sigma', false),
  lcm: row((r) => new LcmSampler(r), 'LCMScheduler', 'timestep', false),
};
export const SAMPLER_TABLE: Readonly<Record<SamplerName, SamplerSpec>> = Object.freeze(ROWS);

/** Samplers with a CFG++ variant, in table order. */
export const CFGPP_SAMPLERS = Object.freeze(SAMPLERS.filter((n) => SAMPLER_TABLE[n].cfgpp)) as readonly SamplerName[];

export function samplerSpec(name: SamplerName): SamplerSpec {
  return SAMPLER_TABLE[name];
}

export function isSamplerName(name: unknown): name is SamplerName {
  return typeof name === 'string' && Object.hasOwn(SAMPLER_TABLE, name);
}

/** Throws `Expected one of euler, euler-a, … for sampler but received "foo"` (ERR_INVALID_ARGUMENT). */
export function validateSamplerName(name: unknown, what = 'sampler'): SamplerName {
  if (!isSamplerName(name)) {
    throw new DiffusionError(
      'ERR_INVALID_ARGUMENT',
      `Expected one of ${SAMPLERS.join(', ')} for ${what} but received ${describe(name)}`,
    );
  }
  return name;
}

/** The diffusers class a scheduler_config.json names → our sampler; undefined for classes not in the table. */
export function samplerForDiffusersClass(className: string | undefined): SamplerName | undefined {
  return className ? SAMPLERS.find((n) => SAMPLER_TABLE[n].diffusersClass === className) : undefined;
}
