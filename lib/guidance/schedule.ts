// Guidance-weight schedules (Wang et al., arXiv 2404.13040; docs/design.md §5.4). Progress s = i/(N−1) runs from 0
// (pure noise, step 0) to 1 (last step):
//   constant  w_i = w
//   linear    w_i = 2w·s
//   cosine    w_i = w(1 − cos πs)
// Both non-constant schedules rise monotonically and average exactly w over the N steps (the terms pair up
// symmetrically around s = 1/2). With N = 1 every schedule gives w. The schedule scales whichever guidance
// method is active (CFG, S-CFG, CFG++ λ).
import { invalid } from '../errors.js';

export const GUIDANCE_SCHEDULES = ['constant', 'linear', 'cosine'] as const;
export type GuidanceSchedule = (typeof GUIDANCE_SCHEDULES)[number];

/** The weight at step i of N. */
export function scheduledWeight(
  scale: number,
  step: number,
  steps: number,
  schedule: GuidanceSchedule = 'constant',
): number {
  if (!Number.isFinite(scale)) invalid('a finite number', 'scale', scale);
  if (!Number.isInteger(steps) || steps < 1) invalid('a positive integer', 'steps', steps);
  if (!Number.isInteger(step) || step < 0 || step >= steps) invalid(`an integer in [0, ${steps - 1}]`, 'step', step);
  if (schedule === 'constant' || steps === 1) {
    if (schedule !== 'constant' && schedule !== 'linear' && schedule !== 'cosine')
      invalid("'constant', 'linear' or 'cosine'", 'schedule', schedule);
    return scale;
  }
  const s = step / (steps - 1);
  if (schedule === 'linear') return 2 * scale * s;
  if (schedule === 'cosine') return scale * (1 - Math.cos(Math.PI * s));
  return invalid("'constant', 'linear' or 'cosine'", 'schedule', schedule);
}

/** All N weights. */
export function scheduledWeights(scale: number, steps: number, schedule: GuidanceSchedule = 'constant'): number[] {
  return Array.from({ length: steps }, (_, i) => scheduledWeight(scale, i, steps, schedule));
}
