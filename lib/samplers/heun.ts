// Heun (HeunDiscreteScheduler): 2N − 1 model calls. Call 2k is an Euler predictor from σ_k to σ_{k+1}; call
// 2k+1 evaluates the model at the predicted point (timestep t_{k+1}) and averages the two slopes. The last
// step (to σ = 0) is Euler only.
import type { SigmaPlan } from '../schedules/index.js';
import { KDiffusionSampler } from './bases.js';
import { denoisedVE, lincomb, type Resolved, type StepExtras } from './common.js';

/** Per-call tables as diffusers keeps them: σ_0, σ_1, σ_1, σ_2, σ_2, ..., σ_{N−1}, σ_{N−1}, 0 (timesteps alike). */
function repeatInner(plan: SigmaPlan): SigmaPlan {
  const s = plan.sigmas;
  return {
    sigmas: [s[0], ...s.slice(1, -1).flatMap((v) => [v, v]), s[s.length - 1]],
    timesteps: [plan.timesteps[0], ...plan.timesteps.slice(1).flatMap((t) => [t, t])],
  };
}

export class HeunSampler extends KDiffusionSampler {
  private prevDerivative: Float32Array | null = null;
  private prevSample: Float32Array | null = null;
  private dt = 0;

  constructor(r: Resolved) {
    super(r, repeatInner);
  }

  protected override get schedulerOrder(): number {
    return 2;
  }

  protected override resetState(): void {
    this.prevDerivative = null;
    this.prevSample = null;
  }

  protected advance(m: Float32Array, i: number, x: Float32Array, _extras: StepExtras): Float32Array {
    if (this.prevDerivative === null) {
      const sigma = this.sigmas[i];
      const next = this.sigmas[i + 1];
      const x0 = denoisedVE(m, x, sigma, this.r.prediction);
      const d = lincomb([
        [1 / sigma, x],
        [-1 / sigma, x0],
      ]);
      this.dt = next - sigma;
      if (next > 0) {
        this.prevDerivative = d;
        this.prevSample = x;
      }
      return lincomb([
        [1, x],
        [this.dt, d],
      ]);
    }
    // second order: the model ran at σ_next on the Euler prediction x
    const sigmaNext = this.sigmas[i];
    const x0 = denoisedVE(m, x, sigmaNext, this.r.prediction);
    const d2 = lincomb([
      [1 / sigmaNext, x],
      [-1 / sigmaNext, x0],
    ]);
    const out = lincomb([
      [1, this.prevSample!],
      [this.dt / 2, this.prevDerivative],
      [this.dt / 2, d2],
    ]);
    this.prevDerivative = null;
    this.prevSample = null;
    return out;
  }
}
