// One denoising step's characteristic guidance inside the pipeline: wires the pure solver
// (./characteristic.ts) to a batched U-Net forward ([uncond; cond] in one pass per iteration) and converts
// between the model's prediction type and ε.
//
// Coordinates: the solver works on the U-Net input x_t = c_in·x (VP coordinates), where the noise scale is
// s = √(1 − ᾱ). ε from v: ε = √ᾱ·v + s·x_t (each half at its own input). The guided ε_CH converts back to a
// v at the unshifted input: v = (ε_CH − s·x_t)/√ᾱ; this equals w·v_c − (w−1)·v_u exactly in real arithmetic
// because the shifts of the two inputs cancel (w(w−1)Δ − (w−1)wΔ = 0).
import type { ModelConfig } from '../loading/types.js';
import type { Sampler } from '../samplers/index.js';
import { noiseTable } from '../schedules/betas.js';
import { characteristicGuidance } from './characteristic.js';
import { rescaleGuidance } from './rescale.js';

/**
 * ᾱ at the U-Net input of call i: c_in² for the σ-based samplers (x/√(σ²+1)), the training table at the
 * (integer) timestep for the VP samplers whose input is the latent itself.
 */
export function modelInputAlphaBar(sampler: Sampler, i: number, config: ModelConfig): number {
  const probe = sampler.scaleModelInput(new Float32Array([1]), i)[0];
  if (probe !== 1) return probe * probe;
  const table = noiseTable(config.scheduler).alphasCumprod;
  const t = Math.min(table.length - 1, Math.max(0, Math.round(sampler.timestep(i))));
  return table[t];
}

export interface CharacteristicStepInput {
  /** U-Net input for this call (one sample) */
  xin: Float32Array;
  scale: number;
  rescale: number;
  alphaBar: number;
  prediction: 'epsilon' | 'v_prediction';
  channels: number;
  /** one U-Net pass on a batch of 2 ([uncond; cond]) with the step's timestep and context */
  forward: (sample: Float32Array) => Promise<Float32Array>;
  checkAbort: () => void;
  tolerance?: number;
  maxIterations?: number;
}

export interface CharacteristicStepResult {
  /** the guided model output in the model's own prediction type, for the sampler */
  output: Float32Array;
  iterations: number;
  converged: boolean;
}

export async function characteristicStep(input: CharacteristicStepInput): Promise<CharacteristicStepResult> {
  const { xin, alphaBar, prediction } = input;
  const n = xin.length;
  const s = Math.sqrt(1 - alphaBar);
  const a = Math.sqrt(alphaBar);
  const toEps = (v: Float32Array, x: Float32Array) => {
    if (prediction === 'epsilon') return v;
    const out = new Float32Array(n);
    for (let k = 0; k < n; k++) out[k] = a * v[k] + s * x[k];
    return out;
  };
  const r = await characteristicGuidance(
    xin,
    async (xc, xu) => {
      input.checkAbort();
      const batch = new Float32Array(2 * n);
      batch.set(xu, 0);
      batch.set(xc, n);
      const out = await input.forward(batch);
      return { uncond: toEps(out.subarray(0, n), xu), cond: toEps(out.subarray(n, 2 * n), xc) };
    },
    {
      scale: input.scale,
      noiseScale: s,
      channels: input.channels,
      tolerance: input.tolerance,
      maxIterations: input.maxIterations,
    },
  );
  let eps = r.guided;
  if (input.rescale > 0) eps = rescaleGuidance(eps, r.evaluation.cond, input.rescale);
  let output = eps;
  if (prediction === 'v_prediction') {
    output = new Float32Array(n);
    for (let k = 0; k < n; k++) output[k] = (eps[k] - s * xin[k]) / a;
  }
  return { output, iterations: r.iterations, converged: r.converged };
}
