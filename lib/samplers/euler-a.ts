// Euler ancestral (EulerAncestralDiscreteScheduler): step down to σ_down with Euler, add σ_up·z.
// σ_up = √(σ_{i+1}²(σ_i² − σ_{i+1}²)/σ_i²), σ_down = √(σ_{i+1}² − σ_up²). diffusers draws z on every step,
// the last one included (where σ_up = 0), so `drawsNoise` is always true to keep the generator in step.
// `eta` scales σ_up as k-diffusion's sample_euler_ancestral (1 = diffusers).
// CFG++ (docs/design.md §5.4): x_{i+1} = x̂0_λ + σ_down·ε_u + σ_up·z.

import { KDiffusionSampler } from './bases.js';
import { denoisedVE, lincomb, type StepExtras } from './common.js';

/** k-diffusion's get_ancestral_step; η = 1 is diffusers' EulerAncestralDiscreteScheduler. */
export function ancestralStep(from: number, to: number, eta = 1): { up: number; down: number } {
  if (eta === 0) return { up: 0, down: to };
  const up = Math.min(to, eta * Math.sqrt((to * to * (from * from - to * to)) / (from * from)));
  return { up, down: Math.sqrt(to * to - up * up) };
}

export class EulerAncestralSampler extends KDiffusionSampler {
  override drawsNoise(_i: number): boolean {
    return true;
  }

  protected advance(m: Float32Array, i: number, x: Float32Array, extras: StepExtras): Float32Array {
    const sigma = this.sigmas[i];
    const { up, down } = ancestralStep(sigma, this.sigmas[i + 1], this.r.eta ?? 1);
    const z = this.noise(i, extras, x.length);
    const x0 = denoisedVE(m, x, sigma, this.r.prediction);
    if (extras.uncondOutput) {
      const x0u = denoisedVE(extras.uncondOutput, x, sigma, this.r.prediction);
      return lincomb([
        [1, x0],
        [down / sigma, x],
        [-down / sigma, x0u],
        [up, z],
      ]);
    }
    const dt = down - sigma;
    return lincomb([
      [1 + dt / sigma, x],
      [-dt / sigma, x0],
      [up, z],
    ]);
  }
}
