// DDIM (DDIMScheduler): x_{t'} = √ᾱ_{t'}·x̂0 + √(1 − ᾱ_{t'} − s²)·ε̂ + s·z, s = η·√((1−ᾱ_{t'})/(1−ᾱ_t)·(1 − ᾱ_t/ᾱ_{t'})),
// t' = t − T/N (diffusers uses T // N whatever the spacing), ᾱ_{t'<0} = 1 (set_alpha_to_one) or ᾱ_0.
// CFG++ (docs/design.md §5.4): x̂0 from the λ-guided output, ε̂ from the unconditional one.
import { ddimTimesteps } from '../schedules/index.js';
import { TimestepSampler } from './bases.js';
import { clamp, lincomb, type Resolved, type StepExtras, splitVP } from './common.js';

const f32 = Math.fround;

/** ᾱ lookup with diffusers' final_alpha_cumprod for negative timesteps. */
export function alphaProd(r: Resolved, t: number): number {
  if (t >= 0) return r.table.alphasCumprod[t];
  return r.config.setAlphaToOne ? 1 : r.table.alphasCumprod[0];
}

export class DdimSampler extends TimestepSampler {
  private readonly stride: number;
  readonly eta: number;

  constructor(r: Resolved) {
    super(r, ddimTimesteps(r.steps, r.config));
    this.stride = Math.floor(r.config.numTrainTimesteps / r.steps);
    this.eta = r.eta ?? 0;
  }

  override drawsNoise(_i: number): boolean {
    return this.eta > 0;
  }

  protected advance(m: Float32Array, i: number, x: Float32Array, extras: StepExtras): Float32Array {
    const t = this.timesteps[i];
    const a = alphaProd(this.r, t);
    const aPrev = alphaProd(this.r, t - this.stride);
    const b = f32(1 - a);
    const bPrev = f32(1 - aPrev);
    const guided = splitVP(m, x, Math.sqrt(a), Math.sqrt(b), this.r.prediction);
    let x0 = guided.x0;
    if (this.r.clipSample) x0 = clamp(x0);
    const eps = extras.uncondOutput
      ? splitVP(extras.uncondOutput, x, Math.sqrt(a), Math.sqrt(b), this.r.prediction).eps
      : guided.eps;
    const variance = (bPrev / b) * (1 - a / aPrev);
    const std = this.eta * Math.sqrt(variance);
    const terms: Array<[number, Float32Array]> = [
      [Math.sqrt(aPrev), x0],
      [Math.sqrt(Math.max(0, 1 - aPrev - std * std)), eps],
    ];
    if (this.eta > 0) terms.push([std, this.noise(i, extras, x.length)]);
    return lincomb(terms);
  }
}
