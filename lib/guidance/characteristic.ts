// Characteristic guidance (Zheng & Lan, arXiv 2312.07586; docs/design.md §5.4), as a pure solver over a callback
// that evaluates the model. All quantities live in the U-Net's input coordinates x (= x_t of the VP
// process; k-diffusion samplers' state times c_in), with s = √(1 − ᾱ_t) the noise scale there.
//
//   ε_CH = w·ε_c(x + (w−1)Δx) − (w−1)·ε_u(x + wΔx)
//   Δx   = P[ s·(ε_u(x + wΔx) − ε_c(x + (w−1)Δx)) ]          (the fixed point; reference code: g = dxs − P(ggg))
//
// P (our reading of the reference WebUI extension, scraed/CharacteristicGuidanceWebUI, without its per-step
// regularisation schedule and warm start): the projection onto the span of the per-channel pieces d_c of the
// plain guidance direction d = ε_c(x) − ε_u(x), shrunk by 1/(1 + ρ). Without the shrink the linearised map
// has a Jacobian ≈ s²/(s² + data variance)·I at high noise — barely contractive; ρ keeps the solve well posed.
// The fixed point is solved by Anderson acceleration (type II, history m) on the residual
// f(Δx) = P G(Δx) − Δx; convergence when RMS(f)/s ≤ tol (the residual in ε units). Each iteration costs one
// evaluation of both halves (the callback batches them in one U-Net pass). The first evaluation is at Δx = 0,
// i.e. plain CFG's: if the solve fails (no convergence within the cap, or non-finite values) the result falls
// back to CFG from that evaluation, at no extra cost.
import { invalid } from '../errors.js';
import { cfg } from './cfg.js';

export interface CharacteristicEvaluation {
  /** ε_c at the cond input and ε_u at the uncond input (ε units, whatever the model predicts). */
  cond: Float32Array;
  uncond: Float32Array;
}

/** Evaluates ε_c at `xCond` and ε_u at `xUncond` (ideally one batched model pass). */
export type CharacteristicModel = (xCond: Float32Array, xUncond: Float32Array) => Promise<CharacteristicEvaluation>;

export interface CharacteristicOptions {
  /** guidance weight w */
  scale: number;
  /** s = √(1 − ᾱ_t): the noise scale in the model-input coordinates */
  noiseScale: number;
  /** convergence threshold on RMS(residual)/s (default 1e-4) */
  tolerance?: number;
  /** maximum fixed-point evaluations after the first (default 50) */
  maxIterations?: number;
  /** Anderson history m (default 3; 0 = damped Picard iteration) */
  history?: number;
  /** mixing β of the Anderson update (default 1) */
  mixing?: number;
  /** shrink ρ of the projection (default 1) */
  regularization?: number;
  /**
   * The projection P (default: per-channel projection onto the plain guidance direction, shrunk by 1/(1+ρ)).
   * Given the vector to project (float64, modified freely) and the Δx = 0 evaluation; returns P(v).
   */
  project?: (v: Float64Array, at0: CharacteristicEvaluation) => Float64Array;
  /** channels of the latent, for the default per-channel projection (default 4) */
  channels?: number;
}

export interface CharacteristicResult {
  /** w·ε_c(x + (w−1)Δx) − (w−1)·ε_u(x + wΔx) at the solution (plain CFG on fallback) */
  guided: Float32Array;
  /** the correction Δx used (zeros on fallback) */
  dx: Float32Array;
  /** the evaluation the guided output combines */
  evaluation: CharacteristicEvaluation;
  /** model evaluations made (1 = converged at Δx = 0, the cost of CFG) */
  iterations: number;
  converged: boolean;
  /** RMS(residual)/s of the returned Δx (of the best iterate when the solve failed) */
  residual: number;
}

/** Per-channel projection onto d = ε_c − ε_u (at Δx = 0), shrunk by 1/(1+ρ); a zero d_c projects to 0. */
export function directionProjection(channels: number, regularization: number) {
  return (v: Float64Array, at0: CharacteristicEvaluation): Float64Array => {
    const n = v.length;
    const per = n / channels;
    const out = new Float64Array(n);
    for (let c = 0; c < channels; c++) {
      let dv = 0,
        dd = 0;
      for (let i = c * per; i < (c + 1) * per; i++) {
        const d = at0.cond[i] - at0.uncond[i];
        dv += d * v[i];
        dd += d * d;
      }
      if (dd === 0) continue;
      const a = dv / (dd * (1 + regularization));
      for (let i = c * per; i < (c + 1) * per; i++) out[i] = a * (at0.cond[i] - at0.uncond[i]);
    }
    return out;
  };
}

/**
 * w·ε_c − (w−1)·ε_u, computed in CFG's form ε_u + w(ε_c − ε_u) (the same value), so that Δx = 0 reproduces
 * plain CFG bit for bit.
 */
export function characteristicCombine(ev: CharacteristicEvaluation, w: number): Float32Array {
  return cfg(ev.uncond, ev.cond, w);
}

function rms(v: Float64Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s / v.length);
}

/** Solves m×m normal equations (ΔFᵀΔF + δI)γ = ΔFᵀf by Gaussian elimination with partial pivoting. */
function leastSquares(dF: Float64Array[], f: Float64Array): Float64Array {
  const m = dF.length;
  const A = Array.from({ length: m }, () => new Float64Array(m + 1));
  let trace = 0;
  for (let i = 0; i < m; i++) {
    for (let j = i; j < m; j++) {
      let s = 0;
      for (let k = 0; k < f.length; k++) s += dF[i][k] * dF[j][k];
      A[i][j] = A[j][i] = s;
    }
    let s = 0;
    for (let k = 0; k < f.length; k++) s += dF[i][k] * f[k];
    A[i][m] = s;
    trace += A[i][i];
  }
  const ridge = 1e-12 * (trace / m) + 1e-300;
  for (let i = 0; i < m; i++) A[i][i] += ridge;
  for (let c = 0; c < m; c++) {
    let p = c;
    for (let r = c + 1; r < m; r++) if (Math.abs(A[r][c]) > Math.abs(A[p][c])) p = r;
    [A[c], A[p]] = [A[p], A[c]];
    for (let r = c + 1; r < m; r++) {
      const q = A[r][c] / A[c][c];
      for (let k = c; k <= m; k++) A[r][k] -= q * A[c][k];
    }
  }
  const g = new Float64Array(m);
  for (let r = m - 1; r >= 0; r--) {
    let s = A[r][m];
    for (let k = r + 1; k < m; k++) s -= A[r][k] * g[k];
    g[r] = s / A[r][r];
  }
  return g;
}

function allFinite(v: ArrayLike<number>): boolean {
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) return false;
  return true;
}

/** Solves for Δx and returns the characteristic-guided prediction at x (see the file header). */
export async function characteristicGuidance(
  x: Float32Array,
  model: CharacteristicModel,
  options: CharacteristicOptions,
): Promise<CharacteristicResult> {
  if (!(x instanceof Float32Array) || x.length === 0) invalid('a non-empty Float32Array', 'x', x);
  const w = options.scale;
  const s = options.noiseScale;
  if (!Number.isFinite(w)) invalid('a finite number', 'scale', w);
  if (!Number.isFinite(s) || s <= 0) invalid('a positive number', 'noiseScale', s);
  const tol = options.tolerance ?? 1e-4;
  const maxIterations = options.maxIterations ?? 50;
  const history = options.history ?? 3;
  const beta = options.mixing ?? 1;
  const rho = options.regularization ?? 1;
  const channels = options.channels ?? 4;
  if (!(tol > 0)) invalid('a positive number', 'tolerance', tol);
  if (!Number.isInteger(maxIterations) || maxIterations < 0)
    invalid('a non-negative integer', 'maxIterations', maxIterations);
  if (!Number.isInteger(history) || history < 0) invalid('a non-negative integer', 'history', history);
  if (!(beta > 0 && beta <= 1)) invalid('a number in (0, 1]', 'mixing', beta);
  if (!(rho >= 0)) invalid('a non-negative number', 'regularization', rho);
  if (!Number.isInteger(channels) || channels < 1 || x.length % channels !== 0)
    invalid(`a channel count dividing ${x.length}`, 'channels', channels);
  const project = options.project ?? directionProjection(channels, rho);
  const n = x.length;

  const evaluateAt = async (dx: Float64Array): Promise<CharacteristicEvaluation> => {
    const xc = new Float32Array(n),
      xu = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      xc[i] = x[i] + (w - 1) * dx[i];
      xu[i] = x[i] + w * dx[i];
    }
    const ev = await model(xc, xu);
    if (ev.cond.length !== n || ev.uncond.length !== n)
      invalid(`${n} values`, 'characteristic model output', ev.cond.length);
    return ev;
  };
  /** f(Δx) = P[s(ε_u − ε_c)] − Δx */
  const residualOf = (dx: Float64Array, ev: CharacteristicEvaluation, at0: CharacteristicEvaluation): Float64Array => {
    const g = new Float64Array(n);
    for (let i = 0; i < n; i++) g[i] = s * (ev.uncond[i] - ev.cond[i]);
    const pg = project(g, at0);
    for (let i = 0; i < n; i++) pg[i] -= dx[i];
    return pg;
  };

  let dx = new Float64Array(n);
  const at0 = await evaluateAt(dx);
  let ev = at0;
  let f = residualOf(dx, ev, at0);
  let res = rms(f) / s;
  let iterations = 1;
  const fallback = (residual: number): CharacteristicResult => ({
    guided: characteristicCombine(at0, w),
    dx: new Float32Array(n),
    evaluation: at0,
    iterations,
    converged: false,
    residual,
  });
  if (!allFinite(at0.cond) || !allFinite(at0.uncond)) return fallback(Number.NaN);
  let best = res;
  const dXs: Float64Array[] = [],
    dFs: Float64Array[] = [];
  while (!(res <= tol) && iterations <= maxIterations) {
    // Anderson (type II): Δx⁺ = Δx + βf − (ΔX + βΔF)γ, γ = argmin ‖f − ΔF γ‖.
    const next = new Float64Array(n);
    for (let i = 0; i < n; i++) next[i] = dx[i] + beta * f[i];
    if (dFs.length > 0) {
      const gamma = leastSquares(dFs, f);
      if (allFinite(gamma)) {
        for (let j = 0; j < dFs.length; j++) {
          for (let i = 0; i < n; i++) next[i] -= (dXs[j][i] + beta * dFs[j][i]) * gamma[j];
        }
      }
    }
    const nextEv = await evaluateAt(next);
    iterations++;
    if (!allFinite(nextEv.cond) || !allFinite(nextEv.uncond)) return fallback(best);
    const nextF = residualOf(next, nextEv, at0);
    if (history > 0) {
      const ddx = new Float64Array(n),
        ddf = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        ddx[i] = next[i] - dx[i];
        ddf[i] = nextF[i] - f[i];
      }
      dXs.push(ddx);
      dFs.push(ddf);
      if (dFs.length > history) {
        dXs.shift();
        dFs.shift();
      }
    }
    dx = next;
    ev = nextEv;
    f = nextF;
    res = rms(f) / s;
    if (res < best) best = res;
  }
  if (!(res <= tol)) return fallback(best);
  return {
    guided: characteristicCombine(ev, w),
    dx: Float32Array.from(dx),
    evaluation: ev,
    iterations,
    converged: true,
    residual: res,
  };
}
