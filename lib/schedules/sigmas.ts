// Noise levels σ for the k-diffusion formulation: x = x0 + σ·ε, σ_t = √((1 − ᾱ_t)/ᾱ_t).
// Every table is returned as plain float64 numbers holding float32 values where diffusers stores float32.
import type { NoiseTable } from './betas.js';

const f32 = Math.fround;

/** np.interp(x, arange(len(fp)), fp) for ascending integer abscissae (float64 result). */
export function interpTable(x: number, fp: ArrayLike<number>): number {
  const n = fp.length;
  if (x <= 0) return fp[0];
  if (x >= n - 1) return fp[n - 1];
  const j = Math.floor(x);
  const slope = (fp[j + 1] - fp[j]) / 1;
  return slope * (x - j) + fp[j];
}

/** σ at (possibly fractional) timesteps by linear interpolation of the σ table, rounded to float32. */
export function sigmasAtTimesteps(timesteps: ArrayLike<number>, table: NoiseTable): number[] {
  return Array.from(timesteps, (t) => f32(interpTable(t, table.sigmas)));
}

/**
 * diffusers' `_sigma_to_t`: piecewise-linear interpolation of t in log σ against the float32 log σ table
 * (index of the last log σ_i ≤ log σ, clamped to [0, T−2], weight clamped to [0, 1]).
 */
export function sigmaToT(sigma: number, logSigmas: ArrayLike<number>): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  const n = logSigmas.length;
  let low = 0;
  // last index with logSigma - logSigmas[i] >= 0 (the table is increasing); 0 when there is none
  for (let i = 0; i < n; i++) if (logSigma - logSigmas[i] >= 0) low = i;
  low = Math.min(low, n - 2);
  const lo = logSigmas[low];
  const hi = logSigmas[low + 1];
  const w = Math.min(1, Math.max(0, (lo - logSigma) / (lo - hi)));
  return (1 - w) * low + w * (low + 1);
}

/** Karras et al. (2022) eq. 5: σ_i = (σ_max^{1/ρ} + i/(N−1)·(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ, float64, N values. */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, n: number, rho = 7): number[] {
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  const ramp = n === 1 ? [0] : Array.from({ length: n }, (_, i) => i / (n - 1));
  return ramp.map((r) => (maxInv + r * (minInv - maxInv)) ** rho);
}

/** k-diffusion's get_sigmas_exponential: σ evenly spaced in log σ from σ_max to σ_min, N values. */
export function exponentialSigmas(sigmaMin: number, sigmaMax: number, n: number): number[] {
  const a = Math.log(sigmaMax);
  const b = Math.log(sigmaMin);
  if (n === 1) return [sigmaMax];
  return Array.from({ length: n }, (_, i) => Math.exp(a + ((b - a) * i) / (n - 1)));
}

/** σ(t) for a fractional t: log-linear interpolation of the table (k-diffusion's t_to_sigma). */
export function tToSigma(t: number, logSigmas: ArrayLike<number>): number {
  const lo = Math.max(0, Math.min(logSigmas.length - 1, Math.floor(t)));
  const hi = Math.max(0, Math.min(logSigmas.length - 1, Math.ceil(t)));
  const w = t - Math.floor(t);
  return Math.exp((1 - w) * logSigmas[lo] + w * logSigmas[hi]);
}

/**
 * "sgm-uniform" (SGM / ComfyUI): N timesteps evenly spaced from t(σ_max) to t(σ_min) over N+1 points with the last
 * dropped, each mapped back to σ by log-linear interpolation of the table. N values (the caller appends 0).
 */
export function sgmUniformSigmas(table: NoiseTable, n: number): number[] {
  const tMax = sigmaToT(table.sigmas[table.sigmas.length - 1], table.logSigmas);
  const tMin = sigmaToT(table.sigmas[0], table.logSigmas);
  return Array.from({ length: n }, (_, i) => tToSigma(tMax + ((tMin - tMax) * i) / n, table.logSigmas));
}
