// DPM-Solver++(2M) (DPMSolverMultistepScheduler: algorithm_type dpmsolver++, solver_order 2, midpoint,
// lower_order_final, final σ = 0), in diffusers' VP form: α_t = 1/√(σ²+1), σ_t = σ·α_t, λ = log α_t − log σ_t,
// h = λ_{i+1} − λ_i.
//   first order : x' = (σ_t'/σ_t)·x − α'(e^{−h} − 1)·D0
//   second order: x' = (σ_t'/σ_t)·x − α'(e^{−h} − 1)·(D0 + ½·D1),  D0 = x̂0_i, D1 = (x̂0_i − x̂0_{i−1})/r, r = h_{i−1}/h
// First order on the first step and on the last one (lower_order_final with < 15 steps, or final σ = 0).
// The SDE variant (sde-dpmsolver++, its own row in registry.ts) shares this class: one N(0, I) draw per step,
// the last included (diffusers draws it before choosing the update); at σ' = 0 its weight is 0. Note: A1111 and
// ComfyUI's "DPM++ 2M SDE" use Brownian-tree noise and so differ; this is diffusers'.
//
// CFG++ (arXiv 2406.08070, DPM-Solver++(2M) algorithm as in the authors' k-diffusion sampler): write the plain
// update as x' = D0 + σ'ε_i + α'(1 − e^{−h})·D1/2 with ε_i = (x − α x̂0_i)/σ_t; CFG++ takes D0 = x̂0_λ,i (λ-guided)
// in the data term, renoises with the unconditional ε_u,i, and forms the correction from x̂0_λ,i − x̂0_u,i−1
// (the previous step's unconditional x̂0):
//   x' = α'·x̂0_λ,i + σ_t'·ε_u,i + α'(1 − e^{−h})·(x̂0_λ,i − x̂0_u,i−1)/(2r)     (second-order steps)
//   x' = α'·x̂0_λ,i + σ_t'·ε_u,i                                                 (first-order steps)
// λ = 0 reproduces the plain sampler on the unconditional output exactly.

import { DpmSampler, vpOfSigma } from './bases.js';
import { lincomb, type Resolved, type StepExtras } from './common.js';

/** 'dpmpp-2m' and 'dpmpp-2m-sde' (the table's row name picks the algorithm). */
export class DpmSolverMultistepSampler extends DpmSampler {
  /** sde-dpmsolver++: one noise draw per step */
  private readonly sde: boolean;
  private prevX0: Float32Array | null = null;
  private prevUncondX0: Float32Array | null = null;
  private lowerOrderNums = 0;

  constructor(r: Resolved) {
    super(r);
    this.sde = r.name === 'dpmpp-2m-sde';
  }

  override drawsNoise(_i: number): boolean {
    return this.sde;
  }

  protected override resetState(): void {
    this.prevX0 = null;
    this.prevUncondX0 = null;
    this.lowerOrderNums = 0;
  }

  private x0Of(m: Float32Array, x: Float32Array, s: { alpha: number; sigmaT: number }): Float32Array {
    if (this.r.prediction === 'epsilon')
      return lincomb([
        [1 / s.alpha, x],
        [-s.sigmaT / s.alpha, m],
      ]);
    return lincomb([
      [s.alpha, x],
      [-s.sigmaT, m],
    ]);
  }

  protected advance(m: Float32Array, i: number, x: Float32Array, extras: StepExtras): Float32Array {
    const n = this.timesteps.length;
    const lowerOrderFinal = i === n - 1; // lower_order_final (< 15 steps) or final σ 0: always first order last
    const cur = vpOfSigma(this.sigmas[i]);
    const nxt = vpOfSigma(this.sigmas[i + 1]);
    const h = nxt.lambda - cur.lambda;
    const expNegH = Math.exp(-h);
    const x0 = this.x0Of(m, x, cur);
    const secondOrder = this.lowerOrderNums >= 1 && !lowerOrderFinal;
    let r = 1;
    if (secondOrder) {
      const prev = vpOfSigma(this.sigmas[i - 1]);
      r = (cur.lambda - prev.lambda) / h;
    }
    let out: Float32Array;
    if (extras.uncondOutput) {
      const x0u = this.x0Of(extras.uncondOutput, x, cur);
      // σ_t'·ε_u = (σ_t'/σ_t)(x − α x̂0_u)
      const ratio = nxt.sigmaT / cur.sigmaT;
      const terms: Array<[number, Float32Array]> = [
        [nxt.alpha, x0],
        [ratio, x],
        [-ratio * cur.alpha, x0u],
      ];
      if (secondOrder) {
        const c = (nxt.alpha * (1 - expNegH)) / (2 * r);
        // a previous step run without CFG++ has no unconditional x̂0: use its x̂0
        terms.push([c, x0], [-c, (this.prevUncondX0 ?? this.prevX0)!]);
      }
      out = lincomb(terms);
      this.prevUncondX0 = x0u;
    } else if (!this.sde) {
      const ratio = nxt.sigmaT / cur.sigmaT;
      const c = -nxt.alpha * (expNegH - 1);
      if (secondOrder) {
        // D0 + ½·(x̂0 − x̂0_prev)/r
        out = lincomb([
          [ratio, x],
          [c * (1 + 0.5 / r), x0],
          [(-c * 0.5) / r, this.prevX0!],
        ]);
      } else {
        out = lincomb([
          [ratio, x],
          [c, x0],
        ]);
      }
    } else {
      // sde-dpmsolver++ (η = 1): x' = (σ_t'/σ_t)e^{−h}x + α'(1 − e^{−2h})(D0 + ½D1) + σ_t'√(1 − e^{−2h})·z;
      // general η as k-diffusion's sample_dpmpp_2m_sde: e^{−ηh}, 1 − e^{−(1+η)h}, √(1 − e^{−2ηh})
      const eta = this.r.eta ?? 1;
      const z = this.noise(i, extras, x.length);
      const etaH = eta === 0 ? 0 : eta * h; // h = ∞ on the last step (σ' = 0): keep 0·∞ out
      const ratio = (nxt.sigmaT / cur.sigmaT) * Math.exp(-etaH);
      const c = nxt.alpha * -Math.expm1(-h - etaH);
      const zc = nxt.sigmaT * Math.sqrt(-Math.expm1(-2 * etaH));
      if (secondOrder) {
        out = lincomb([
          [ratio, x],
          [c * (1 + 0.5 / r), x0],
          [(-c * 0.5) / r, this.prevX0!],
          [zc, z],
        ]);
      } else {
        out = lincomb([
          [ratio, x],
          [c, x0],
          [zc, z],
        ]);
      }
    }
    this.prevX0 = x0;
    if (!extras.uncondOutput) this.prevUncondX0 = null;
    if (this.lowerOrderNums < 2) this.lowerOrderNums++;
    return out;
  }
}
