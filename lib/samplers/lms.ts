// LMS (LMSDiscreteScheduler, order 4): linear multistep on the ODE derivative d = (x − x̂0)/σ in σ.
// The coefficient of derivative j is ∫_{σ_i}^{σ_{i+1}} ℓ_j(τ) dτ with ℓ_j the Lagrange basis over the last
// (up to 4) σs. diffusers integrates it with scipy's quad (epsrel 1e-4, float32 integrand); the integrand is a
// polynomial of degree ≤ 3, so an 8-point Gauss–Legendre rule is exact here up to float64 rounding.

import { KDiffusionSampler } from './bases.js';
import { denoisedVE, lincomb, type StepExtras } from './common.js';

const GL_NODES = [
  -0.9602898564975363, -0.7966664774136267, -0.525532409916329, -0.1834346424956498, 0.1834346424956498,
  0.525532409916329, 0.7966664774136267, 0.9602898564975363,
];
const GL_WEIGHTS = [
  0.1012285362903763, 0.2223810344533745, 0.3137066458778873, 0.362683783378362, 0.362683783378362, 0.3137066458778873,
  0.2223810344533745, 0.1012285362903763,
];

/** ∫_a^b f(τ) dτ by 8-point Gauss–Legendre (exact for polynomials of degree ≤ 15). */
export function gaussLegendre(f: (t: number) => number, a: number, b: number): number {
  const half = (b - a) / 2;
  const mid = (a + b) / 2;
  let s = 0;
  for (let k = 0; k < GL_NODES.length; k++) s += GL_WEIGHTS[k] * f(mid + half * GL_NODES[k]);
  return s * half;
}

/** diffusers' get_lms_coefficient(order, t, currentOrder) over a σ list. */
export function lmsCoefficient(sigmas: readonly number[], order: number, t: number, current: number): number {
  const basis = (tau: number) => {
    let prod = 1;
    for (let k = 0; k < order; k++) {
      if (k === current) continue;
      prod *= (tau - sigmas[t - k]) / (sigmas[t - current] - sigmas[t - k]);
    }
    return prod;
  };
  return gaussLegendre(basis, sigmas[t], sigmas[t + 1]);
}

export class LmsSampler extends KDiffusionSampler {
  readonly order = 4;
  private derivatives: Float32Array[] = [];

  protected override resetState(): void {
    this.derivatives = [];
  }

  protected advance(m: Float32Array, i: number, x: Float32Array, _extras: StepExtras): Float32Array {
    const sigma = this.sigmas[i];
    const x0 = denoisedVE(m, x, sigma, this.r.prediction);
    this.derivatives.push(
      lincomb([
        [1 / sigma, x],
        [-1 / sigma, x0],
      ]),
    );
    if (this.derivatives.length > this.order) this.derivatives.shift();
    const order = Math.min(i + 1, this.order);
    const terms: Array<[number, Float32Array]> = [[1, x]];
    // diffusers: order = min(step_index + 1, 4) for the coefficients, zipped with the derivatives it has (fewer
    // after set_begin_index)
    for (let j = 0; j < Math.min(order, this.derivatives.length); j++) {
      terms.push([lmsCoefficient(this.sigmas, order, i, j), this.derivatives[this.derivatives.length - 1 - j]]);
    }
    return lincomb(terms);
  }
}
