// Runs a sampler over a diffusers scheduler trace (test/fixtures/schedulers/trace_*): feeds the saved model
// outputs (and, for stochastic samplers, the noise a seeded torch generator gives), and reports the worst
// error of every scaled model input and intermediate latent, relative to max(1, |value|).

import type { Sampler } from '../../lib/samplers/index.js';
import { fixture, readSafetensors } from './fixtures.js';
import { TorchGenerator } from './torch-randn.js';

export interface TraceResult {
  timesteps: number[];
  wantTimesteps: number[];
  worstInput: number;
  worstLatent: number;
  perStep: number[];
}

function worst(got: Float32Array, want: Float32Array): number {
  let m = 0;
  for (let k = 0; k < want.length; k++) m = Math.max(m, Math.abs(got[k] - want[k]) / Math.max(1, Math.abs(want[k])));
  return m;
}

/**
 * `accumulate` false: each step restarts from diffusers' latent (one step's error alone); true: our own latent
 * carries on (the error of the whole run).
 */
export function runTrace(file: string, sampler: Sampler, noiseSeed?: number, accumulate = false): TraceResult {
  const t = readSafetensors(fixture(`schedulers/${file}.safetensors`)).tensors;
  const calls = t.timesteps.shape[0];
  const n = (t.x_init.data as Float32Array).length;
  const gen = noiseSeed === undefined ? undefined : new TorchGenerator(noiseSeed);
  let x = Float32Array.from(t.x_init.data as Float32Array);
  const timesteps: number[] = [];
  let worstInput = 0;
  let worstLatent = 0;
  const perStep: number[] = [];
  for (let i = 0; i < calls; i++) {
    timesteps.push(sampler.timestep(i));
    const xin = sampler.scaleModelInput(x, i);
    worstInput = Math.max(
      worstInput,
      worst(xin, (t.scaled_model_input.data as Float32Array).subarray(i * n, (i + 1) * n)),
    );
    const m = (t.model_output.data as Float32Array).subarray(i * n, (i + 1) * n);
    const noise = sampler.drawsNoise(i) ? gen!.randn(n) : undefined;
    x = sampler.step(Float32Array.from(m), i, x, { noise });
    const want = (t.prev_sample.data as Float32Array).subarray(i * n, (i + 1) * n);
    const w = worst(x, want);
    perStep.push(w);
    worstLatent = Math.max(worstLatent, w);
    // continue from diffusers' latent so one step's error is measured on its own, not accumulated
    if (!accumulate) x = Float32Array.from(want);
  }
  return {
    timesteps,
    wantTimesteps: Array.from(t.timesteps.data as ArrayLike<number>),
    worstInput,
    worstLatent,
    perStep,
  };
}
