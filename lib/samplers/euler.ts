// Euler (EulerDiscreteScheduler, Karras et al. 2022 Alg. 2 without churn), with CFG++ (docs/design.md §5.4):
// plain:  x_{i+1} = x_i + (σ_{i+1} − σ_i)·(x_i − x̂0)/σ_i
// CFG++:  x_{i+1} = x̂0_λ + σ_{i+1}·ε_u,  ε_u = (x_i − x̂0_u)/σ_i  (= the unconditional ε for ε-models)

import { KDiffusionSampler } from './bases.js';
import { denoisedVE, lincomb, type StepExtras } from './common.js';

export class EulerSampler extends KDiffusionSampler {
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
