// Euler (EulerDiscreteScheduler, Karras et al. 2022 Alg. 2 without churn), with CFG++ (DESIGN §5.4):
// plain:  x_{i+1} = x_i + (σ_{i+1} − σ_i)·(x_i − x̂0)/σ_i
// CFG++:  x_{i+1} = x̂0_λ + σ_{i+1}·ε_u,  ε_u = (x_i − x̂0_u)/σ_i  (= the unconditional ε for ε-models)
import { kdiffusionPlan } from '../schedules/index.js';
import { denoisedVE, lincomb, type Resolved, SamplerBase, type StepExtras, veInitNoiseSigma } from './common.js';

export class EulerSampler extends SamplerBase {
  readonly name = 'euler' as const;
  readonly timesteps: readonly number[];
  readonly sigmas: readonly number[];
  readonly initNoiseSigma: number;
  override readonly supportsCfgpp = true;

  constructor(private readonly r: Resolved) {
    super();
    const plan = kdiffusionPlan({
      steps: r.steps,
      config: r.config,
      schedule: r.schedule,
      customSigmas: r.customSigmas,
    });
    this.timesteps = plan.timesteps;
    this.sigmas = plan.sigmas;
    this.initNoiseSigma = veInitNoiseSigma(Math.max(...plan.sigmas), r.config.timestepSpacing);
  }

  protected noiseCoefficients(i: number): [number, number] {
    return [1, this.sigmas[i]];
  }

  protected override inputScale(i: number): number {
    const s = this.sigmas[i];
    return 1 / Math.sqrt(s * s + 1);
  }

  protected advance(m: Float32Array, i: number, x: Float32Array, extras: StepExtras): Float32Array {
    const sigma = this.sigmas[i];
    const next = this.sigmas[i + 1];
    const x0 = denoisedVE(m, x, sigma, this.r.prediction);
    if (extras.uncondOutput) {
      const x0u = denoisedVE(extras.uncondOutput, x, sigma, this.r.prediction);
      return lincomb([
        [1, x0],
        [next / sigma, x],
        [-next / sigma, x0u],
      ]);
    }
    const dt = next - sigma;
    return lincomb([
      [1 + dt / sigma, x],
      [-dt / sigma, x0],
    ]);
  }
}
