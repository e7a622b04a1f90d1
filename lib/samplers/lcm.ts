// LCM (LCMScheduler): consistency-model boundary conditions on x̂0, then renoise to the next timestep with
// fresh noise (every step but the last, which returns the denoised sample).
// c_skip = σ_d²/((10t)² + σ_d²), c_out = 10t/√((10t)² + σ_d²), σ_d = 0.5 (timestep_scaling 10).
import { lcmTimesteps } from '../schedules/index.js';
import { TimestepSampler } from './bases.js';
import { clamp, lincomb, type Resolved, type StepExtras, splitVP } from './common.js';
import { alphaProd } from './ddim.js';

const f32 = Math.fround;

export class LcmSampler extends TimestepSampler {
  readonly timestepScaling = 10;
  readonly sigmaData = 0.5;

  constructor(r: Resolved) {
    super(r, lcmTimesteps(r.steps, r.config, r.originalInferenceSteps));
  }

  override drawsNoise(i: number): boolean {
    return i !== this.timesteps.length - 1;
  }

  protected advance(m: Float32Array, i: number, x: Float32Array, extras: StepExtras): Float32Array {
    const t = this.timesteps[i];
    const last = i === this.timesteps.length - 1;
    const prevT = last ? t : this.timesteps[i + 1];
    const a = alphaProd(this.r, t);
    const aPrev = alphaProd(this.r, prevT);
    const scaled = t * this.timestepScaling;
    const sd2 = this.sigmaData * this.sigmaData;
    const cSkip = sd2 / (scaled * scaled + sd2);
    const cOut = scaled / Math.sqrt(scaled * scaled + sd2);
    let x0 = splitVP(m, x, Math.sqrt(a), Math.sqrt(f32(1 - a)), this.r.prediction).x0;
    if (this.r.clipSample) x0 = clamp(x0);
    const denoised = lincomb([
      [cOut, x0],
      [cSkip, x],
    ]);
    if (last) return denoised;
    const z = this.noise(i, extras, x.length);
    return lincomb([
      [Math.sqrt(aPrev), denoised],
      [Math.sqrt(f32(1 - aPrev)), z],
    ]);
  }
}
