// DPM-Solver++(2M) SDE: DPMSolverMultistepScheduler with algorithm_type "sde-dpmsolver++" (midpoint, order 2).
// One N(0, I) draw per step, the last included (diffusers draws it before choosing the update); at σ' = 0 its
// weight is 0. Note: A1111/ComfyUI's "DPM++ 2M SDE" uses Brownian-tree noise and so differs; this is diffusers'.

import type { Resolved } from './common.js';
import { DpmSolverMultistepSampler } from './dpmpp-2m.js';

export function createDpmpp2mSde(r: Resolved): DpmSolverMultistepSampler {
  return new DpmSolverMultistepSampler(r, true);
}
