// Shifted cosine logSNR schedule of the layered models (docs/design.md §5.2): one shared t ∈ [0, 1] for every scale.
//   logSNR(t) = −2 ln tan(t_min + t (t_max − t_min)),  t_min = atan(e^{−logSNR_max/2}), t_max = atan(e^{−logSNR_min/2})
//   logSNR_d(t) = logSNR(t) + 2 ln(d_base / d)   (added after clipping)
//   α² = sigmoid(logSNR), σ² = sigmoid(−logSNR)
import { invalid } from '../errors.js';

export interface ShiftedCosineConfig {
  /** side (px) at which the unshifted schedule applies: the lowest scale */
  baseSize: number;
  logsnrMin: number;
  logsnrMax: number;
}

export function cosineLogSnr(t: number, logsnrMin = -15, logsnrMax = 15): number {
  if (!(t >= 0 && t <= 1)) invalid('a number in [0, 1]', 't', t);
  const tMin = Math.atan(Math.exp(-0.5 * logsnrMax));
  const tMax = Math.atan(Math.exp(-0.5 * logsnrMin));
  return -2 * Math.log(Math.tan(tMin + t * (tMax - tMin)));
}

/** logSNR at shared time t for the scale of side `side`. */
export function shiftedLogSnr(t: number, side: number, cfg: ShiftedCosineConfig): number {
  if (!(side > 0)) invalid('a positive side', 'side', side);
  return cosineLogSnr(t, cfg.logsnrMin, cfg.logsnrMax) + 2 * Math.log(cfg.baseSize / side);
}

export function alphaSigma(logSnr: number): { alpha: number; sigma: number } {
  // sigmoid(±x) without overflow
  const sig = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
  return { alpha: Math.sqrt(sig(logSnr)), sigma: Math.sqrt(sig(-logSnr)) };
}

/** The shared t grid of an N-step sampler: 1 = pure noise down to 0, N + 1 points. */
export function sharedTimeGrid(steps: number): Float64Array {
  if (!Number.isInteger(steps) || steps < 1 || steps > 10000) invalid('an integer in [1, 10000]', 'steps', steps);
  const out = new Float64Array(steps + 1);
  for (let i = 0; i <= steps; i++) out[i] = 1 - i / steps;
  return out;
}
