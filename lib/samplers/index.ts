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
 *   output and renoises with ε_u (docs/design.md §5.4; dpmpp-2m's variant is documented in dpmpp-2m.ts).
 * - Samplers are stateful (multistep history); calls must come in order. `reset()` starts over.
 * - img2img: `const b = s.beginIndexForStrength(strength); s.setBeginIndex(b); x = s.addNoise(x0, noise, b);`
 *   then run calls b .. modelCalls − 1 (diffusers' get_timesteps + add_noise; no initNoiseSigma factor).
 * - Tolerances: against diffusers' float32 traces each step agrees to ≤ 1.5e-6 relative to max(1, |x|),
 *   a whole 10-step run to ≤ 5e-6 (test/samplers.test.ts); tables: timesteps exact, σ to float32 rounding.
 * - Samplers are registered in one table (registry.ts); names, validation and the CFG++ list derive from it.
 * - Schedules: 'default' (the config's spacing, as diffusers; alias 'normal'), 'karras' (ρ = 7), 'exponential', 'sgm-uniform',
 *   or custom `sigmas`, for the σ-based samplers (euler, euler-a, heun, lms, dpmpp-2m, dpmpp-2m-sde, unipc).
 *   ddim, pndm and lcm walk the discrete timestep grid and accept only 'default'.
 */
import type { ScheduleName } from '../schedules/index.js';
import { resolveOptions, type Sampler, type SamplerOptions } from './common.js';
import {
  CFGPP_SAMPLERS,
  SAMPLER_TABLE,
  SAMPLERS,
  type SamplerName,
  samplerForDiffusersClass,
  validateSamplerName,
} from './registry.js';

export type { ScheduleName } from '../schedules/index.js';
export type { Sampler, SamplerOptions, StepExtras } from './common.js';
export type { SamplerSpec } from './registry.js';
export {
  CFGPP_SAMPLERS,
  isSamplerName,
  SAMPLER_TABLE,
  SAMPLERS,
  type SamplerName,
  samplerForDiffusersClass,
  validateSamplerName,
} from './registry.js';

/** Sampler names accepted by createSampler, in a stable order (a copy of SAMPLERS). */
export function listSamplers(): SamplerName[] {
  return [...SAMPLERS];
}

/** Samplers with a CFG++ variant (a copy of CFGPP_SAMPLERS). */
export function listCfgppSamplers(): SamplerName[] {
  return [...CFGPP_SAMPLERS];
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
  const spec = SAMPLER_TABLE[n];
  return spec.create(resolveOptions(n, spec, options));
}
