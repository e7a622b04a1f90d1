// The three shapes a sampler's constructor takes, written once. diffusers repeats them per scheduler class (its
// "Copied from" blocks); here each family is a base class and a sampler file holds only its update rule.
//   KDiffusionSampler  σ-parameterised, variance exploding (x = x0 + σε): Euler, Euler a, Heun, LMS.
//                      σ plan of EulerDiscreteScheduler.set_timesteps, input scaled by 1/√(σ²+1).
//   DpmSampler         σ plan of DPMSolverMultistep / UniPC, stepped in VP coordinates (α = 1/√(σ²+1)).
//   TimestepSampler    the discrete training grid indexed by integer timestep: DDIM, PNDM, LCM.
import { dpmPlan, kdiffusionPlan, type SigmaPlan } from '../schedules/index.js';
import { type Resolved, requireTimestepsInRange, SamplerBase, veInitNoiseSigma } from './common.js';

/** α_t = 1/√(σ²+1), σ_t = σ·α_t and λ = log α_t − log σ_t of a VE σ. */
export function vpOfSigma(sigma: number): { alpha: number; sigmaT: number; lambda: number } {
  const alpha = 1 / Math.sqrt(sigma * sigma + 1);
  const sigmaT = sigma * alpha;
  return { alpha, sigmaT, lambda: Math.log(alpha) - Math.log(sigmaT) };
}

export abstract class KDiffusionSampler extends SamplerBase {
  readonly timesteps: readonly number[];
  readonly sigmas: readonly number[];
  readonly initNoiseSigma: number;

  /** `perCall` maps the N-step plan to the per-call tables (Heun repeats each inner σ). */
  constructor(r: Resolved, perCall: (plan: SigmaPlan) => SigmaPlan = (plan) => plan) {
    super(r);
    const plan = kdiffusionPlan({
      steps: r.steps,
      config: r.config,
      schedule: r.schedule,
      customSigmas: r.customSigmas,
    });
    const calls = perCall(plan);
    this.timesteps = calls.timesteps;
    this.sigmas = calls.sigmas;
    this.initNoiseSigma = veInitNoiseSigma(Math.max(...plan.sigmas), r.config.timestepSpacing);
  }

  protected noiseCoefficients(i: number): [number, number] {
    return [1, this.sigmas[i]];
  }

  protected override inputScale(i: number): number {
    const s = this.sigmas[i];
    return 1 / Math.sqrt(s * s + 1);
  }
}

export abstract class DpmSampler extends SamplerBase {
  readonly timesteps: readonly number[];
  readonly sigmas: readonly number[];
  readonly initNoiseSigma = 1;

  constructor(r: Resolved) {
    super(r);
    const plan = dpmPlan({ steps: r.steps, config: r.config, schedule: r.schedule, customSigmas: r.customSigmas });
    this.timesteps = plan.timesteps;
    this.sigmas = plan.sigmas;
  }

  protected noiseCoefficients(i: number): [number, number] {
    const v = vpOfSigma(this.sigmas[i]);
    return [v.alpha, v.sigmaT];
  }
}

export abstract class TimestepSampler extends SamplerBase {
  readonly timesteps: readonly number[];
  readonly initNoiseSigma = 1;

  /** `timesteps`: the sampler's own spacing over the training grid (checked to stay inside it). */
  constructor(r: Resolved, timesteps: number[]) {
    super(r);
    this.timesteps = timesteps;
    requireTimestepsInRange(timesteps, r);
  }

  protected noiseCoefficients(i: number): [number, number] {
    const a = this.r.table.alphasCumprod[this.timesteps[i]];
    return [Math.sqrt(a), Math.sqrt(Math.fround(1 - a))];
  }
}
