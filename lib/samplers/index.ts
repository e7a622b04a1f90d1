/**
 * Samplers: pure-TS reference implementations of diffusers' schedulers (0.29), exact against its tables and
 * step traces (test/samplers.test.ts). The native loop must reproduce these; TypeScript decides the numbers.
 *
 * How the pipeline drives a sampler
 * ---------------------------------
 *   const s = createSampler('euler', { steps, config });            // config: the model's SchedulerConfig
 *   let x = seededRandn(shape).map((v) => v * s.initNoiseSigma);
 *   for (let i = 0; i < s.modelCalls; i++) {                         // PNDM: steps + 1 calls, Heun: 2·steps − 1
 *     const xin = s.scaleModelInput(x, i);                           // x/√(σ²+1) for σ-based samplers, else x
 *     const out = unetWithCfg(xin, s.timestep(i));                   // ε or v, guided (CFG: ε_u + w(ε_c − ε_u))
 *     const noise = s.drawsNoise(i) ? generator.randn(x.length) : undefined;   // one draw per step, in order
 *     x = s.step(out, i, x, { noise });
 *   }
 *
 * - `timestep(i)` is what the U-Net receives (floats for euler/euler-a/lms/heun, integers otherwise).
 * - Noise: ancestral/stochastic samplers (euler-a always; lcm all but the last step; ddim when η > 0;
 *   dpmpp-2m-sde always) consume one N(0, I) draw of the latent's size per step where `drawsNoise(i)`; diffusers
 *   draws `randn_tensor(latent shape, generator)` at that point from the same torch generator as the initial
 *   latents, so drawing in call order from one seeded torch-compatible generator reproduces diffusers.
 * - CFG++ (ddim, euler, euler-a, dpmpp-2m; `supportsCfgpp`): run the U-Net on [uncond, cond] as for CFG, pass
 *   `out = ε_u + λ(ε_c − ε_u)` (λ ∈ [0, 1]) and `{ uncondOutput: ε_u }`. The sampler takes x̂0 from the guided
 *   output and renoises with ε_u (DESIGN §5.4; dpmpp-2m's variant is documented in dpmpp-2m.ts).
 * - Samplers are stateful (multistep history); calls must come in order. `reset()` starts over.
 * - img2img: `const b = s.beginIndexForStrength(strength); s.setBeginIndex(b); x = s.addNoise(x0, noise, b);`
 *   then run calls b .. modelCalls − 1 (diffusers' get_timesteps + add_noise; no initNoiseSigma factor).
 * - Tolerances: against diffusers' float32 traces each step agrees to ≤ 1.5e-6 relative to max(1, |x|),
 *   a whole 10-step run to ≤ 5e-6 (test/samplers.test.ts); tables: timesteps exact, σ to float32 rounding.
 * - Schedules: 'default' (the config's spacing, as diffusers; alias 'normal'), 'karras' (ρ = 7), 'exponential', 'sgm-uniform',
 *   or custom `sigmas`, for the σ-based samplers (euler, euler-a, heun, lms, dpmpp-2m, dpmpp-2m-sde, unipc).
 *   ddim, pndm and lcm walk the discrete timestep grid and accept only 'default'.
 */
import { DiffusionError, describe } from '../errors.js';
import { resolveOptions, type Sampler, type SamplerName, type SamplerOptions, type ScheduleName } from './common.js';
import { DdimSampler } from './ddim.js';
import { createDpmpp2m } from './dpmpp-2m.js';
import { createDpmpp2mSde } from './dpmpp-2m-sde.js';
import { EulerSampler } from './euler.js';
import { EulerAncestralSampler } from './euler-a.js';
import { HeunSampler } from './heun.js';
import { LcmSampler } from './lcm.js';
import { LmsSampler } from './lms.js';
import { PndmSampler } from './pndm.js';
import { UniPcSampler } from './unipc.js';

export type { Sampler, SamplerName, SamplerOptions, ScheduleName, StepExtras } from './common.js';

const FACTORIES: Record<SamplerName, (r: ReturnType<typeof resolveOptions>) => Sampler> = {
  euler: (r) => new EulerSampler(r),
  'euler-a': (r) => new EulerAncestralSampler(r),
  heun: (r) => new HeunSampler(r),
  'dpmpp-2m': createDpmpp2m,
  'dpmpp-2m-sde': createDpmpp2mSde,
  ddim: (r) => new DdimSampler(r),
  pndm: (r) => new PndmSampler(r),
  lms: (r) => new LmsSampler(r),
  unipc: (r) => new UniPcSampler(r),
  lcm: (r) => new LcmSampler(r),
};

/** Sampler names accepted by createSampler, in a stable order. */
export function listSamplers(): SamplerName[] {
  return Object.keys(FACTORIES) as SamplerName[];
}

/** Samplers with a CFG++ variant. */
export function listCfgppSamplers(): SamplerName[] {
  return ['ddim', 'euler', 'euler-a', 'dpmpp-2m'];
}

export function isSamplerName(name: unknown): name is SamplerName {
  return typeof name === 'string' && Object.hasOwn(FACTORIES, name);
}

/** Throws `Expected one of euler, euler-a, … for sampler but received "foo"` (ERR_INVALID_ARGUMENT). */
export function validateSamplerName(name: unknown, what = 'sampler'): SamplerName {
  if (!isSamplerName(name)) {
    throw new DiffusionError(
      'ERR_INVALID_ARGUMENT',
      `Expected one of ${listSamplers().join(', ')} for ${what} but received ${describe(name)}`,
    );
  }
  return name;
}

/**
 * The diffusers class a model's scheduler_config.json names → our sampler (for "use the model's own scheduler").
 * Unknown classes give undefined.
 */
export function samplerForDiffusersClass(className: string | undefined): SamplerName | undefined {
  const map: Record<string, SamplerName> = {
    EulerDiscreteScheduler: 'euler',
    EulerAncestralDiscreteScheduler: 'euler-a',
    HeunDiscreteScheduler: 'heun',
    DPMSolverMultistepScheduler: 'dpmpp-2m',
    DDIMScheduler: 'ddim',
    PNDMScheduler: 'pndm',
    LMSDiscreteScheduler: 'lms',
    UniPCMultistepScheduler: 'unipc',
    LCMScheduler: 'lcm',
  };
  return className ? map[className] : undefined;
}

/**
 * The sampler and schedule a diffusers scheduler_config.json asks for (its `_class_name` plus the switches that
 * change the algorithm: DPM-Solver's algorithm_type, use_karras_sigmas / use_exponential_sigmas). Undefined when
 * the class is not one of ours or its algorithm variant is not implemented (e.g. DPM-Solver order 3, "dpmsolver").
 */
export function samplerFromDiffusersConfig(
  json: Record<string, unknown>,
): { sampler: SamplerName; schedule: ScheduleName } | undefined {
  const className = typeof json._class_name === 'string' ? json._class_name : undefined;
  let sampler = samplerForDiffusersClass(className);
  if (!sampler) return undefined;
  if (sampler === 'dpmpp-2m') {
    const algorithm = json.algorithm_type ?? 'dpmsolver++';
    if (algorithm === 'sde-dpmsolver++') sampler = 'dpmpp-2m-sde';
    else if (algorithm !== 'dpmsolver++') return undefined;
    if ((json.solver_order ?? 2) !== 2 || (json.solver_type ?? 'midpoint') !== 'midpoint') return undefined;
  }
  if (
    sampler === 'unipc' &&
    ((json.solver_order ?? 2) !== 2 || (json.solver_type ?? 'bh2') !== 'bh2' || json.predict_x0 === false)
  ) {
    return undefined;
  }
  const schedule: ScheduleName =
    json.use_karras_sigmas === true ? 'karras' : json.use_exponential_sigmas === true ? 'exponential' : 'default';
  return { sampler, schedule };
}

export function createSampler(name: SamplerName | string, options: SamplerOptions): Sampler {
  const n = validateSamplerName(name);
  return FACTORIES[n](resolveOptions(n, options));
}
