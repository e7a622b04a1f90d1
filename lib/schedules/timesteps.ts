// Timestep spacing exactly as diffusers' set_timesteps (0.29). The scheduler classes disagree in small
// ways (N vs N+1 points, ints vs float32), so each family has its own function, named after the classes.

import { invalid } from '../errors.js';
import type { SchedulerConfig } from '../loading/types.js';

type SpacingConfig = Pick<SchedulerConfig, 'numTrainTimesteps' | 'timestepSpacing' | 'stepsOffset'>;

/** numpy's round (half to even). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** np.linspace(start, stop, num) in float64 (numpy's formula: start + i*step, last point exactly stop). */
export function npLinspace(start: number, stop: number, num: number): number[] {
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  const out = Array.from({ length: num }, (_, i) => start + i * step);
  out[num - 1] = stop;
  return out;
}

/** np.arange(start, stop, step) for a negative float step. */
function npArangeDown(start: number, stop: number, step: number): number[] {
  const n = Math.max(0, Math.ceil((stop - start) / step));
  return Array.from({ length: n }, (_, i) => start + i * step);
}

export function checkSteps(steps: number, config: SpacingConfig): void {
  if (!Number.isInteger(steps) || steps < 1 || steps > config.numTrainTimesteps) {
    invalid(`an integer from 1 to ${config.numTrainTimesteps}`, 'steps', steps);
  }
}

/** DDIMScheduler / PNDM base / LCM-free discrete spacing: N integer timesteps, descending. */
export function ddimTimesteps(steps: number, config: SpacingConfig): number[] {
  checkSteps(steps, config);
  const T = config.numTrainTimesteps;
  switch (config.timestepSpacing) {
    case 'linspace':
      return npLinspace(0, T - 1, steps)
        .map(roundHalfEven)
        .reverse();
    case 'leading': {
      const ratio = Math.floor(T / steps);
      return Array.from({ length: steps }, (_, i) => (steps - 1 - i) * ratio + config.stepsOffset);
    }
    case 'trailing':
      return npArangeDown(T, 0, -T / steps).map((t) => roundHalfEven(t) - 1);
    default:
      return invalid('one of leading, trailing, linspace', 'timestepSpacing', config.timestepSpacing);
  }
}

/** PNDMScheduler with skip_prk_steps: N+1 timesteps, the second one repeated (901, 801, 801, 701, ... for N = 10). */
export function pndmTimesteps(steps: number, config: SpacingConfig): number[] {
  checkSteps(steps, config);
  const T = config.numTrainTimesteps;
  let asc: number[];
  switch (config.timestepSpacing) {
    case 'linspace':
      asc = npLinspace(0, T - 1, steps).map(roundHalfEven);
      break;
    case 'leading': {
      const ratio = Math.floor(T / steps);
      asc = Array.from({ length: steps }, (_, i) => i * ratio + config.stepsOffset);
      break;
    }
    case 'trailing':
      asc = npArangeDown(T, 0, -T / steps)
        .map(roundHalfEven)
        .reverse()
        .map((t) => t - 1);
      break;
    default:
      return invalid('one of leading, trailing, linspace', 'timestepSpacing', config.timestepSpacing);
  }
  const plms = [...asc.slice(0, -1), ...asc.slice(-2, -1), ...asc.slice(-1)];
  return plms.reverse();
}

/**
 * Euler / Euler a / LMS / Heun: N float32 timesteps. linspace is not rounded here (fractional timesteps), the
 * other spacings give whole numbers.
 */
export function kdiffusionTimesteps(steps: number, config: SpacingConfig): number[] {
  checkSteps(steps, config);
  const T = config.numTrainTimesteps;
  switch (config.timestepSpacing) {
    case 'linspace':
      return npLinspace(0, T - 1, steps)
        .map(Math.fround)
        .reverse();
    case 'leading': {
      const ratio = Math.floor(T / steps);
      return Array.from({ length: steps }, (_, i) => (steps - 1 - i) * ratio + config.stepsOffset);
    }
    case 'trailing':
      return npArangeDown(T, 0, -T / steps).map((t) => roundHalfEven(t) - 1);
    default:
      return invalid('one of leading, trailing, linspace', 'timestepSpacing', config.timestepSpacing);
  }
}

/** DPMSolverMultistep / UniPC: N integer timesteps taken from N+1 points (901, 811, ..., 91 for leading, N = 10). */
export function dpmTimesteps(steps: number, config: SpacingConfig): number[] {
  checkSteps(steps, config);
  const T = config.numTrainTimesteps; // lambda_min_clipped = -inf: the last usable timestep is T
  switch (config.timestepSpacing) {
    case 'linspace':
      return npLinspace(0, T - 1, steps + 1)
        .map(roundHalfEven)
        .reverse()
        .slice(0, -1);
    case 'leading': {
      const ratio = Math.floor(T / (steps + 1));
      return Array.from({ length: steps }, (_, i) => (steps - i) * ratio + config.stepsOffset);
    }
    case 'trailing':
      return npArangeDown(T, 0, -T / steps).map((t) => roundHalfEven(t) - 1);
    default:
      return invalid('one of leading, trailing, linspace', 'timestepSpacing', config.timestepSpacing);
  }
}

/**
 * LCMScheduler: the distillation grid k·i − 1 (k = T / originalSteps, i = 1..originalSteps), reversed, sampled at
 * floor(linspace(0, originalSteps, N, endpoint=False)). Ignores timestepSpacing like diffusers.
 */
export function lcmTimesteps(steps: number, config: SpacingConfig, originalSteps = 50): number[] {
  checkSteps(steps, config);
  const T = config.numTrainTimesteps;
  if (!Number.isInteger(originalSteps) || originalSteps < 1 || originalSteps > T) {
    invalid(`an integer from 1 to ${T}`, 'originalInferenceSteps', originalSteps);
  }
  if (steps > originalSteps) invalid(`at most originalInferenceSteps (${originalSteps}) steps`, 'steps', steps);
  const k = Math.floor(T / originalSteps);
  const origin = Array.from({ length: originalSteps }, (_, i) => (i + 1) * k - 1).reverse();
  const stride = originalSteps / steps; // np.linspace(0, originalSteps, N, endpoint=False)
  return Array.from({ length: steps }, (_, i) => origin[Math.floor(i * stride)]);
}
