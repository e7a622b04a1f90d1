// UniPC (UniPCMultistepScheduler: bh2, predict_x0, solver_order 2, lower_order_final, corrector on every step
// but the first), in diffusers' VP form. With m_i the x̂0 of call i, h = λ_t − λ_s0, hh = −h, B(h) = e^{hh} − 1:
//   predictor (UniP, order p): x_t = (σ_t/σ_s0)·x − α_t·B·m0 − α_t·B·ρ_p·D1,   D1 = (m_{−1} − m0)/r1, ρ_p = ½
//   corrector (UniC at the next call, same order p): x_t ← (σ_t/σ_s0)·x_prev − α_t·B·m0
//                     − α_t·B·(ρ_c,0·D1 + ρ_c,last·(m_t − m0)),  ρ_c solves R·ρ = b (order 1: ρ = ½)
// with b_k = h·φ_k-style coefficients exactly as diffusers builds them. The order drops to 1 on the first step
// (warm-up) and on the last (lower_order_final).

import { DpmSampler, vpOfSigma } from './bases.js';
import { lincomb, type StepExtras } from './common.js';

/** diffusers' b vector: b_k = h_phi_k·k!/B_h for k = 1..order (hh = −h, bh2). */
function bCoefficients(hh: number, order: number): number[] {
  const hPhi1 = Math.expm1(hh);
  let hPhiK = hPhi1 / hh - 1;
  let factorial = 1;
  const bh = Math.expm1(hh);
  const b: number[] = [];
  for (let k = 1; k <= order; k++) {
    b.push((hPhiK * factorial) / bh);
    factorial *= k + 1;
    hPhiK = hPhiK / hh - 1 / factorial;
  }
  return b;
}

export class UniPcSampler extends DpmSampler {
  readonly solverOrder = 2;
  private outputs: Float32Array[] = []; // converted x̂0 of earlier calls, newest last
  private lastSample: Float32Array | null = null;
  private thisOrder = 1;
  private lowerOrderNums = 0;

  protected override resetState(): void {
    this.outputs = [];
    this.lastSample = null;
    this.lowerOrderNums = 0;
    this.thisOrder = 1;
  }

  protected advance(m: Float32Array, i: number, x: Float32Array, _extras: StepExtras): Float32Array {
    const cur = vpOfSigma(this.sigmas[i]);
    const x0 =
      this.r.prediction === 'epsilon'
        ? lincomb([
            [1 / cur.alpha, x],
            [-cur.sigmaT / cur.alpha, m],
          ])
        : lincomb([
            [cur.alpha, x],
            [-cur.sigmaT, m],
          ]);
    let sample = x;
    if (i > 0 && this.lastSample) sample = this.corrector(x0, i);
    this.outputs.push(x0);
    if (this.outputs.length > this.solverOrder) this.outputs.shift();
    const order = Math.min(this.solverOrder, this.timesteps.length - i, this.lowerOrderNums + 1);
    this.thisOrder = order;
    this.lastSample = sample;
    const out = this.predictor(sample, i, order);
    if (this.lowerOrderNums < this.solverOrder) this.lowerOrderNums++;
    return out;
  }

  private predictor(x: Float32Array, i: number, order: number): Float32Array {
    const m0 = this.outputs[this.outputs.length - 1];
    const t = vpOfSigma(this.sigmas[i + 1]);
    const s0 = vpOfSigma(this.sigmas[i]);
    const h = t.lambda - s0.lambda;
    const hh = -h;
    const hPhi1 = Math.expm1(hh);
    const bh = Math.expm1(hh);
    const terms: Array<[number, Float32Array]> = [
      [t.sigmaT / s0.sigmaT, x],
      [-t.alpha * hPhi1, m0],
    ];
    if (order === 2) {
      const s1 = vpOfSigma(this.sigmas[i - 1]);
      const rk = (s1.lambda - s0.lambda) / h;
      const m1 = this.outputs[this.outputs.length - 2];
      const c = (-t.alpha * bh * 0.5) / rk; // ρ_p = ½ for order 2
      terms.push([c, m1], [-c, m0]);
    }
    return lincomb(terms);
  }

  private corrector(modelT: Float32Array, i: number): Float32Array {
    const order = this.thisOrder;
    const m0 = this.outputs[this.outputs.length - 1];
    const x = this.lastSample!;
    const t = vpOfSigma(this.sigmas[i]);
    const s0 = vpOfSigma(this.sigmas[i - 1]);
    const h = t.lambda - s0.lambda;
    const hh = -h;
    const hPhi1 = Math.expm1(hh);
    const bh = Math.expm1(hh);
    const b = bCoefficients(hh, order);
    let rhos: number[];
    let rk = 1;
    if (order === 1) {
      rhos = [0.5];
    } else {
      const s1 = vpOfSigma(this.sigmas[i - 2]);
      rk = (s1.lambda - s0.lambda) / h;
      // R = [[1, 1], [rk, 1]] (rows: rks^0, rks^1 with rks = [rk, 1]); solve R·ρ = b
      const det = 1 * 1 - 1 * rk;
      rhos = [(b[0] * 1 - 1 * b[1]) / det, (1 * b[1] - rk * b[0]) / det];
    }
    const terms: Array<[number, Float32Array]> = [
      [t.sigmaT / s0.sigmaT, x],
      [-t.alpha * hPhi1, m0],
    ];
    const last = rhos[rhos.length - 1];
    const k = -t.alpha * bh;
    terms.push([k * last, modelT], [-k * last, m0]);
    if (order === 2) {
      const m1 = this.outputs[this.outputs.length - 2];
      const c = (k * rhos[0]) / rk;
      terms.push([c, m1], [-c, m0]);
    }
    return lincomb(terms);
  }
}
